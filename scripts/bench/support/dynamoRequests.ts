/**
 * Which DynamoDB requests a join costs, counted at the database: every request the LB sends is named by
 * its operation (X-Amz-Target) and the kind of item it touches (the `pk` prefix, or `index` for a GSI
 * query). The join path touches rooms (and servers, when a room's server is missing from the LB's fleet
 * cache); the LB's background loops query the GSI and write its region summary.
 */

export type ItemKind = 'room' | 'server' | 'region' | 'index' | 'other';

export interface DynamoRequestKey {
  readonly operation: string;
  readonly kind: ItemKind;
}

/** `operation:kind` → requests. */
export type RequestCounts = Record<string, number>;

interface AttributeValue {
  readonly S?: string;
}

export function classifyDynamoRequest(target: string | undefined, body: string): DynamoRequestKey {
  const operation = (target ?? '').split('.').pop() || 'unknown';
  if (operation === 'Query' || operation === 'Scan') return { operation, kind: 'index' };
  let pk: string | undefined;
  try {
    const parsed = JSON.parse(body) as {
      Key?: { pk?: AttributeValue };
      Item?: { pk?: AttributeValue };
      RequestItems?: Record<string, { Keys?: { pk?: AttributeValue }[] }>;
    };
    // A batch read is named by its first key: the store batches one kind of item per request.
    const batch = parsed.RequestItems && Object.values(parsed.RequestItems)[0]?.Keys?.[0];
    pk = parsed.Key?.pk?.S ?? parsed.Item?.pk?.S ?? batch?.pk?.S;
  } catch {
    pk = undefined;
  }
  const prefix = pk?.split('#')[0];
  const kind: ItemKind = prefix === 'room' || prefix === 'server' || prefix === 'region' ? prefix : 'other';
  return { operation, kind };
}

export function countKey(key: DynamoRequestKey): string {
  return `${key.operation}:${key.kind}`;
}

/** Requests a join sent: anything on a room or server item (the background loops touch neither). */
export function joinPathRequests(counts: RequestCounts): number {
  return Object.entries(counts)
    .filter(([key]) => key.endsWith(':room') || key.endsWith(':server'))
    .reduce((sum, [, n]) => sum + n, 0);
}

export function totalRequests(counts: RequestCounts): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** `after - before`, key by key (counters only grow). */
export function diffCounts(after: RequestCounts, before: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [key, n] of Object.entries(after)) {
    const d = n - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}
