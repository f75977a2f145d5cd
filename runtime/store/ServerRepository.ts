/**
 * Media server items (`server#<id>` / `meta`), and when their heartbeats make a server alive or gone.
 *
 * Policy: a server writes its own item, a full put per heartbeat; a status change alone is an update
 * conditioned on the item existing on this replica. Liveness is judged from `heartbeatAt`, with a
 * wider margin for another region's servers, whose heartbeats arrive through replication and carry
 * their own clock.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { TABLE_KEYS } from './schema';
import type { Item, Table } from './Table';
import type { MediaServerRecord, ServerStatus } from './types';

/** Media servers heartbeat every 2 s; three missed beats (plus replication slack) make a server dead. */
export const DEFAULT_SERVER_LIVENESS_MS = 7_000;
/**
 * Another region's heartbeats reach this replica through replication (usually under a second, no
 * bound) and carry that server's clock: before such a server is judged gone, its heartbeat must be
 * this much older again. A few seconds of lag or skew must never make every LB take over a healthy
 * region's rooms in bulk; a client that saw the server fail gets a direct probe instead (ServerProbe).
 */
export const DEFAULT_REMOTE_LIVENESS_MARGIN_MS = 8_000;
/** Dead servers' items linger for inspection, then DynamoDB TTL removes them. */
const SERVER_ITEM_TTL_S = 3_600;

export interface ServerLivenessOptions {
  /** How old a heartbeat may be for its server to count as alive. @default DEFAULT_SERVER_LIVENESS_MS */
  readonly serverLivenessMs?: number;
  /** Extra age before another region's server is judged gone. @default DEFAULT_REMOTE_LIVENESS_MARGIN_MS */
  readonly remoteLivenessMarginMs?: number;
}

export interface ServerRepositoryOptions extends ServerLivenessOptions {
  /** This process's region: its servers' heartbeats need no replication margin. */
  readonly region: string;
  readonly now: () => number;
}

const serverKey = (id: string) => ({ pk: `server#${id}`, sk: 'meta' });

export class ServerRepository {
  private readonly region: string;
  private readonly serverLivenessMs: number;
  private readonly remoteLivenessMarginMs: number;
  private readonly now: () => number;

  constructor(
    private readonly table: Table,
    opts: ServerRepositoryOptions,
  ) {
    this.region = opts.region;
    this.serverLivenessMs = opts.serverLivenessMs ?? DEFAULT_SERVER_LIVENESS_MS;
    this.remoteLivenessMarginMs = opts.remoteLivenessMarginMs ?? DEFAULT_REMOTE_LIVENESS_MARGIN_MS;
    this.now = opts.now;
  }

  /**
   * Registers or refreshes a server (a heartbeat is a full put: idempotent, and it re-creates an item
   * that a partition or a sweep removed). The caller owns `status`, so draining survives heartbeats.
   */
  async put(server: MediaServerRecord): Promise<void> {
    await this.table.run('servers.put', () =>
      this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...serverKey(server.id),
            ...server,
            [TABLE_KEYS.gsiPartitionKey]: `region#${server.region}`,
            [TABLE_KEYS.gsiSortKey]: `server#${server.id}`,
            [TABLE_KEYS.ttlAttribute]: Math.floor(server.heartbeatAt / 1000) + SERVER_ITEM_TTL_S,
          },
        }),
      ),
    );
  }

  register(server: Omit<MediaServerRecord, 'heartbeatAt'>): Promise<void> {
    return this.put({ ...server, heartbeatAt: this.now() });
  }

  heartbeat(server: Omit<MediaServerRecord, 'heartbeatAt'>): Promise<void> {
    return this.put({ ...server, heartbeatAt: this.now() });
  }

  /** Marks a server draining: placement skips it, its calls go on. False if the server is unknown. */
  async drain(id: string): Promise<boolean> {
    return this.setStatus(id, 'draining');
  }

  async setStatus(id: string, status: ServerStatus): Promise<boolean> {
    const out = await this.table.runConditional('servers.setStatus', () =>
      this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: serverKey(id),
          UpdateExpression: 'SET #status = :status',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status },
        }),
      ),
    );
    return out !== null;
  }

  async remove(id: string): Promise<void> {
    await this.table.run('servers.remove', () =>
      this.table.doc.send(new DeleteCommand({ TableName: this.table.name, Key: serverKey(id) })),
    );
  }

  async get(id: string): Promise<MediaServerRecord | null> {
    const out = await this.table.run('servers.get', () =>
      this.table.doc.send(
        new GetCommand({ TableName: this.table.name, Key: serverKey(id), ConsistentRead: true }),
      ),
    );
    return out.Item ? toServer(out.Item) : null;
  }

  /** Every server item of a region, live or not (GSI `region#<r>`, sort key prefix `server#`). */
  async list(region: string): Promise<MediaServerRecord[]> {
    const items = await this.table.queryAll('servers.list', {
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey, '#gsk': TABLE_KEYS.gsiSortKey },
      ExpressionAttributeValues: { ':gpk': `region#${region}`, ':prefix': 'server#' },
    });
    return items.map(toServer);
  }

  /** Servers of a region whose last heartbeat is younger than the liveness window (any status). */
  async listLive(region: string): Promise<MediaServerRecord[]> {
    const now = this.now();
    return (await this.list(region)).filter((s) => this.isAlive(s, now));
  }

  /**
   * Whether the server's heartbeat is recent: what it takes to receive new rooms, count towards
   * health, and serve as a takeover target.
   */
  isAlive(server: MediaServerRecord, now = this.now()): boolean {
    return now - server.heartbeatAt < this.serverLivenessMs;
  }

  /**
   * Whether the heartbeat alone proves the server gone, so its rooms may be taken over without other
   * evidence: as soon as it is not alive for a server of this region, a margin later for another
   * region's (DEFAULT_REMOTE_LIVENESS_MARGIN_MS).
   */
  isGone(server: MediaServerRecord, now = this.now()): boolean {
    const margin = server.region === this.region ? 0 : this.remoteLivenessMarginMs;
    return now - server.heartbeatAt >= this.serverLivenessMs + margin;
  }
}

function toServer(item: Item): MediaServerRecord {
  return {
    id: String(item.id),
    region: String(item.region),
    endpoint: String(item.endpoint),
    publicIp: String(item.publicIp),
    capacity: Number(item.capacity),
    load: Number(item.load),
    ...(item.rooms !== undefined && { rooms: Number(item.rooms) }),
    status: item.status === 'draining' ? 'draining' : 'active',
    heartbeatAt: Number(item.heartbeatAt),
    startedAt: Number(item.startedAt),
  };
}
