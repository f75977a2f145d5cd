/**
 * The single table's physical shape. The CDK table, the local emulator and the tests all create the
 * table from these names, so they cannot drift apart.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsiName: 'gsi1',
  gsiPartitionKey: 'gsi1pk',
  gsiSortKey: 'gsi1sk',
  ttlAttribute: 'expiresAt',
} as const;

/** CreateTable input equivalent to the CDK TableV2 (on-demand, one all-projected GSI). TTL is set apart. */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const k = TABLE_KEYS;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: k.partitionKey, AttributeType: 'S' },
      { AttributeName: k.sortKey, AttributeType: 'S' },
      { AttributeName: k.gsiPartitionKey, AttributeType: 'S' },
      { AttributeName: k.gsiSortKey, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: k.partitionKey, KeyType: 'HASH' },
      { AttributeName: k.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: k.gsiName,
        KeySchema: [
          { AttributeName: k.gsiPartitionKey, KeyType: 'HASH' },
          { AttributeName: k.gsiSortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}
