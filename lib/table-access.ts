/**
 * Least-privilege access to this region's replica of the global table. Every runtime process talks to
 * its own region's replica only (runtime/store/Table.ts), so grants name exactly that replica and its
 * one GSI: no `index/*`, no other region's ARN.
 *
 * Reads are open to every item: placement and health read servers, rooms and regions alike. Writes are
 * limited to the item kinds a role owns, by partition key prefix (`dynamodb:LeadingKeys`), so that a
 * compromised media host cannot rewrite region summaries or evacuate a region, and an LB cannot forge
 * a media server's heartbeat.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { TABLE_KEYS } from '../runtime/store/schema';

/** Read calls the store (runtime/store/) makes; extend together with the store. */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'] as const;
/** Write calls the store makes; each names one item, so its partition key is in the request. */
export const TABLE_WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
] as const;
export const TABLE_DATA_ACTIONS = [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS] as const;

/** Partition key prefix of each item kind (DESIGN.md data model; the store's repositories build the keys). */
export const ITEM_KEY_PREFIXES = {
  server: 'server#',
  room: 'room#',
  region: 'region#',
} as const;
export type ItemKind = keyof typeof ITEM_KEY_PREFIXES;

export interface RegionalTableAccess {
  /** The item kinds the grantee may put, update and delete; it reads every kind. */
  readonly writes: readonly ItemKind[];
}

/** Grants the store's reads on `table` (this region's replica) and its GSI, and writes of `writes` only. */
export function grantRegionalTableAccess(
  grantee: iam.IGrantable,
  table: dynamodb.ITableV2,
  access: RegionalTableAccess,
): void {
  if (access.writes.length === 0) {
    throw new Error('grantRegionalTableAccess needs at least one item kind in writes; every role writes one');
  }
  iam.Grant.addToPrincipal({
    grantee,
    actions: [...TABLE_READ_ACTIONS],
    resourceArns: [table.tableArn, `${table.tableArn}/index/${TABLE_KEYS.gsiName}`],
  });
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [...TABLE_WRITE_ACTIONS],
      // Writes address the base table; an index is never written directly.
      resources: [table.tableArn],
      conditions: {
        // Every partition key the request touches must match a prefix of an owned kind.
        'ForAllValues:StringLike': {
          'dynamodb:LeadingKeys': access.writes.map((kind) => `${ITEM_KEY_PREFIXES[kind]}*`),
        },
        // ForAllValues is also true when the request carries no key at all; require that it does.
        Null: { 'dynamodb:LeadingKeys': 'false' },
      },
    }),
  );
}
