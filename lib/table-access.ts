/**
 * Least-privilege access to this region's replica of the global table. Every runtime process talks to
 * its own region's replica only (runtime/store/store.ts), so grants name exactly that replica and its
 * one GSI: no `index/*`, no other region's ARN.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { TABLE_KEYS } from '../runtime/store/schema';

/** The calls runtime/store/store.ts makes; extend this list together with the store. */
export const TABLE_DATA_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
] as const;

/** Grants the store's calls on `table` (this region's replica) and its GSI. */
export function grantRegionalTableAccess(grantee: iam.IGrantable, table: dynamodb.ITableV2): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: [...TABLE_DATA_ACTIONS],
    resourceArns: [table.tableArn, `${table.tableArn}/index/${TABLE_KEYS.gsiName}`],
  });
}
