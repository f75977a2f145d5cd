/**
 * Which items a DynamoDB write request changed, read from the wire-format request and response bodies the
 * emulator's proxy sees. Only the replicated table counts: global tables replicate that table alone.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../store/schema';

export type AttributeMap = Record<string, AttributeValue>;

/** The write operations DynamoDB global tables replicate (the emulator has no TransactWriteItems). */
export const WRITE_OPERATIONS: ReadonlySet<string> = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
]);

/** `DynamoDB_20120810.PutItem` → `PutItem`. */
export function operationOf(targetHeader: string | string[] | undefined): string | undefined {
  const target = Array.isArray(targetHeader) ? targetHeader[0] : targetHeader;
  return target?.split('.')[1];
}

/** The item key: the table's partition and sort key attributes only. */
export function keyOf(item: AttributeMap): AttributeMap {
  const pk = item[TABLE_KEYS.partitionKey];
  const sk = item[TABLE_KEYS.sortKey];
  if (!pk || !sk)
    throw new Error(`item has no ${TABLE_KEYS.partitionKey}/${TABLE_KEYS.sortKey} key attributes`);
  return { [TABLE_KEYS.partitionKey]: pk, [TABLE_KEYS.sortKey]: sk };
}

/** A stable string for a key, for maps keyed by item. */
export function keyId(key: AttributeMap): string {
  return JSON.stringify([key[TABLE_KEYS.partitionKey], key[TABLE_KEYS.sortKey]]);
}

interface WriteRequest {
  PutRequest?: { Item?: AttributeMap };
  DeleteRequest?: { Key?: AttributeMap };
}

interface WriteBody {
  TableName?: string;
  Item?: AttributeMap;
  Key?: AttributeMap;
  RequestItems?: Record<string, WriteRequest[]>;
  UnprocessedItems?: Record<string, WriteRequest[]>;
}

function batchKeys(requests: readonly WriteRequest[] | undefined): AttributeMap[] {
  return (requests ?? []).flatMap((r) => {
    const source = r.PutRequest?.Item ?? r.DeleteRequest?.Key;
    return source ? [keyOf(source)] : [];
  });
}

/**
 * Keys of the items a successful write changed in `tableName`; [] for other tables and operations.
 * A batch's unprocessed items did not change, so they are left out.
 */
export function writtenKeys(
  operation: string,
  request: unknown,
  response: unknown,
  tableName: string,
): AttributeMap[] {
  const req = (request ?? {}) as WriteBody;
  switch (operation) {
    case 'PutItem':
      return req.TableName === tableName && req.Item ? [keyOf(req.Item)] : [];
    case 'UpdateItem':
    case 'DeleteItem':
      return req.TableName === tableName && req.Key ? [keyOf(req.Key)] : [];
    case 'BatchWriteItem': {
      const unprocessed = new Set(
        batchKeys(((response ?? {}) as WriteBody).UnprocessedItems?.[tableName]).map(keyId),
      );
      const seen = new Set<string>();
      return batchKeys(req.RequestItems?.[tableName]).filter((k) => {
        const id = keyId(k);
        if (unprocessed.has(id) || seen.has(id)) return false;
        seen.add(id);
        return true;
      });
    }
    default:
      return [];
  }
}
