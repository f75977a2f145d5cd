/**
 * The DynamoDB single-table data layer shared by the LB service and the media servers.
 *
 * Every call goes to this region's replica only. Global tables check conditions against the local
 * replica and resolve cross-region conflicts last-writer-wins per item, so:
 *   - a placement can win here and lose globally; media servers re-read their rooms and converge;
 *   - each item has exactly one kind of writer where possible (the region status vs the LB summary).
 * No TransactWriteItems: it is region-local in global tables and the local emulator lacks it.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import DataLoader from 'dataloader';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError, ThrottledError, toStoreError } from './errors';
import { TABLE_KEYS } from './schema';
import type {
  MediaServerRecord,
  PlaceRoomResult,
  RegionStatus,
  RegionStatusRecord,
  RegionSummary,
  RegionView,
  RoomRecord,
  ServerStatus,
} from './types';

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
/**
 * Rooms are released by their server when the last peer leaves; TTL only sweeps rooms of crashed servers.
 * A live room's owner pushes it forward (refreshRoom) so a call may last longer than this.
 */
const ROOM_ITEM_TTL_S = 24 * 3_600;
const REGIONS_GSI_PK = 'regions';
/** DynamoDB's limit of keys in one BatchGetItem. */
const BATCH_GET_MAX_KEYS = 100;
/** Rounds of UnprocessedKeys (throttling) one batch read retries before it gives up. */
const BATCH_GET_MAX_ROUNDS = 4;
const BATCH_GET_RETRY_BASE_MS = 25;

export interface StoreOptions {
  /** AWS region of the replica this process talks to. */
  readonly region: string;
  readonly tableName: string;
  /** Custom endpoint (the local emulator); default: the regional DynamoDB endpoint. */
  readonly endpoint?: string;
  readonly credentials?: DynamoDBClientConfig['credentials'];
  /** Per-request socket timeout, ms. A dead replica must fail fast, not hang a join. @default 2000 */
  readonly requestTimeoutMs?: number;
  /** SDK attempts per call (throttling and 5xx retries). @default 3 */
  readonly maxAttempts?: number;
  /** How old a heartbeat may be for its server to count as alive. @default DEFAULT_SERVER_LIVENESS_MS */
  readonly serverLivenessMs?: number;
  /** Extra age before another region's server is judged gone. @default DEFAULT_REMOTE_LIVENESS_MARGIN_MS */
  readonly remoteLivenessMarginMs?: number;
  readonly now?: () => number;
  /** An existing client to share (tests count requests through its middleware stack). */
  readonly client?: DynamoDBClient;
}

interface Item {
  [key: string]: unknown;
}

const serverKey = (id: string) => ({ pk: `server#${id}`, sk: 'meta' });
const roomKey = (id: string) => ({ pk: `room#${id}`, sk: 'meta' });
const regionKey = (region: string, sk: 'meta' | 'summary') => ({ pk: `region#${region}`, sk });

export function createDynamoClient(opts: StoreOptions): DynamoDBClient {
  return new DynamoDBClient({
    region: opts.region,
    endpoint: opts.endpoint,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.requestTimeoutMs ?? 2_000,
      requestTimeout: opts.requestTimeoutMs ?? 2_000,
      // Without this the SDK only logs a warning at the timeout and keeps waiting on a silent replica.
      throwOnRequestTimeout: true,
    }),
  });
}

export class Store {
  readonly tableName: string;
  readonly region: string;
  readonly serverLivenessMs: number;
  readonly remoteLivenessMarginMs: number;
  readonly client: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;
  private readonly now: () => number;
  /**
   * Room reads that arrive in the same event-loop turn share one request. Each SDK call costs the LB
   * more CPU than the rest of a join, and under load many joins are parsed in one turn; at low load a
   * batch is one read and costs one turn of latency. Never cached: every join reads the replica.
   */
  private readonly roomReads = new DataLoader<string, RoomRecord | null>((ids) => this.getRooms(ids), {
    cache: false,
    maxBatchSize: BATCH_GET_MAX_KEYS,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
  });

  constructor(opts: StoreOptions) {
    this.tableName = opts.tableName;
    this.region = opts.region;
    this.serverLivenessMs = opts.serverLivenessMs ?? DEFAULT_SERVER_LIVENESS_MS;
    this.remoteLivenessMarginMs = opts.remoteLivenessMarginMs ?? DEFAULT_REMOTE_LIVENESS_MARGIN_MS;
    this.now = opts.now ?? Date.now;
    this.client = opts.client ?? createDynamoClient(opts);
    this.doc = DynamoDBDocumentClient.from(this.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  close(): void {
    this.client.destroy();
  }

  // ---- media servers -------------------------------------------------------------------------------

  /**
   * Registers or refreshes a server (a heartbeat is a full put: idempotent, and it re-creates an item
   * that a partition or a sweep removed). The caller owns `status`, so draining survives heartbeats.
   */
  async putServer(server: MediaServerRecord): Promise<void> {
    await this.run('putServer', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
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

  registerServer(server: Omit<MediaServerRecord, 'heartbeatAt'>): Promise<void> {
    return this.putServer({ ...server, heartbeatAt: this.now() });
  }

  heartbeat(server: Omit<MediaServerRecord, 'heartbeatAt'>): Promise<void> {
    return this.putServer({ ...server, heartbeatAt: this.now() });
  }

  /** Marks a server draining: placement skips it, its calls go on. False if the server is unknown. */
  async drainServer(id: string): Promise<boolean> {
    return this.setServerStatus(id, 'draining');
  }

  async setServerStatus(id: string, status: ServerStatus): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: serverKey(id),
          UpdateExpression: 'SET #status = :status',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw toStoreError(err, this.tableName, 'setServerStatus');
    }
  }

  async removeServer(id: string): Promise<void> {
    await this.run('removeServer', () =>
      this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: serverKey(id) })),
    );
  }

  async getServer(id: string): Promise<MediaServerRecord | null> {
    const out = await this.run('getServer', () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: serverKey(id), ConsistentRead: true })),
    );
    return out.Item ? toServer(out.Item) : null;
  }

  /** Every server item of a region, live or not (GSI `region#<r>`, sort key prefix `server#`). */
  async listServers(region: string): Promise<MediaServerRecord[]> {
    const items = await this.queryAll('listServers', {
      TableName: this.tableName,
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey, '#gsk': TABLE_KEYS.gsiSortKey },
      ExpressionAttributeValues: { ':gpk': `region#${region}`, ':prefix': 'server#' },
    });
    return items.map(toServer);
  }

  /** Servers of a region whose last heartbeat is younger than the liveness window (any status). */
  async listLiveServers(region: string): Promise<MediaServerRecord[]> {
    const now = this.now();
    return (await this.listServers(region)).filter((s) => this.isAlive(s, now));
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

  // ---- rooms ---------------------------------------------------------------------------------------

  /** One room's assignment, strongly consistent on this replica (batched with concurrent reads). */
  getRoom(id: string): Promise<RoomRecord | null> {
    return this.roomReads.load(id);
  }

  /** Rooms' assignments in the order asked, `null` for a room with no item; strongly consistent. */
  async getRooms(ids: readonly string[]): Promise<(RoomRecord | null)[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 1) {
      const out = await this.run('getRoom', () =>
        this.doc.send(
          new GetCommand({ TableName: this.tableName, Key: roomKey(unique[0]!), ConsistentRead: true }),
        ),
      );
      const room = out.Item ? toRoom(out.Item) : null;
      return ids.map(() => room);
    }
    const found = new Map<string, RoomRecord>();
    for (let i = 0; i < unique.length; i += BATCH_GET_MAX_KEYS) {
      for (const room of await this.batchGetRooms(unique.slice(i, i + BATCH_GET_MAX_KEYS))) {
        found.set(room.id, room);
      }
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  /**
   * Assigns a room to a server with a conditional write: `attribute_not_exists` for a new room
   * (`expectedVersion` undefined), a `version` match for a takeover. A lost race is a result, not an
   * exception: the caller gets what the replica holds now and usually sends its peer there.
   */
  async placeRoom(args: {
    roomId: string;
    serverId: string;
    region: string;
    expectedVersion?: number;
  }): Promise<PlaceRoomResult> {
    const now = this.now();
    const takeover = args.expectedVersion !== undefined;
    const room: RoomRecord = {
      id: args.roomId,
      serverId: args.serverId,
      region: args.region,
      version: takeover ? args.expectedVersion! + 1 : 1,
      createdAt: now,
      updatedAt: now,
    };
    try {
      if (takeover) {
        // An update keeps createdAt; a takeover is the same room moving, not a new one.
        const out = await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: roomKey(args.roomId),
            UpdateExpression:
              'SET serverId = :serverId, #region = :region, version = :next, updatedAt = :now, #gpk = :gpk, #gsk = :gsk, #ttl = :ttl',
            ConditionExpression: 'version = :expected',
            ExpressionAttributeNames: {
              '#region': 'region',
              '#gpk': TABLE_KEYS.gsiPartitionKey,
              '#gsk': TABLE_KEYS.gsiSortKey,
              '#ttl': TABLE_KEYS.ttlAttribute,
            },
            ExpressionAttributeValues: {
              ':serverId': args.serverId,
              ':region': args.region,
              ':next': room.version,
              ':expected': args.expectedVersion,
              ':now': now,
              ':gpk': `region#${args.region}`,
              ':gsk': `room#${args.roomId}`,
              ':ttl': Math.floor(now / 1000) + ROOM_ITEM_TTL_S,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { outcome: 'placed', room: toRoom(out.Attributes!) };
      }
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...roomKey(args.roomId),
            ...room,
            [TABLE_KEYS.gsiPartitionKey]: `region#${args.region}`,
            [TABLE_KEYS.gsiSortKey]: `room#${args.roomId}`,
            [TABLE_KEYS.ttlAttribute]: Math.floor(now / 1000) + ROOM_ITEM_TTL_S,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { outcome: 'placed', room };
    } catch (err) {
      if (!isConditionFailure(err)) throw toStoreError(err, this.tableName, 'placeRoom');
      return { outcome: 'lost', current: await this.getRoom(args.roomId) };
    }
  }

  /** Deletes a room only if `serverId` still owns it (a room taken over elsewhere must stay). */
  async releaseRoom(roomId: string, serverId: string): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: roomKey(roomId),
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeValues: { ':serverId': serverId },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw toStoreError(err, this.tableName, 'releaseRoom');
    }
  }

  /**
   * Pushes a room item's TTL (`expiresAt`) to 24 h from now, only if `serverId` still owns the room:
   * the owner of a live room calls it now and then so a call longer than a day keeps its item. Nothing
   * else changes (not `version`, which placements are conditioned on). False, not an error, when the
   * condition fails: the room has moved to another server or its item is gone (no item is created).
   */
  async refreshRoom(roomId: string, serverId: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: roomKey(roomId),
          UpdateExpression: 'SET #ttl = :ttl',
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
          ExpressionAttributeValues: {
            ':serverId': serverId,
            ':ttl': Math.floor(this.now() / 1000) + ROOM_ITEM_TTL_S,
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw toStoreError(err, this.tableName, 'refreshRoom');
    }
  }

  /** Rooms currently assigned to servers of a region (GSI `region#<r>`, prefix `room#`). */
  async listRooms(region: string): Promise<RoomRecord[]> {
    const items = await this.queryAll('listRooms', {
      TableName: this.tableName,
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey, '#gsk': TABLE_KEYS.gsiSortKey },
      ExpressionAttributeValues: { ':gpk': `region#${region}`, ':prefix': 'room#' },
    });
    return items.map(toRoom);
  }

  // ---- regions -------------------------------------------------------------------------------------

  /** A region with no status item has never been evacuated: it is active. */
  async getRegionStatus(region: string): Promise<RegionStatusRecord> {
    const out = await this.run('getRegionStatus', () =>
      this.doc.send(
        new GetCommand({ TableName: this.tableName, Key: regionKey(region, 'meta'), ConsistentRead: true }),
      ),
    );
    return out.Item ? toRegionStatus(out.Item) : { region, status: 'active', reason: '', updatedAt: 0 };
  }

  /** Operator action (evacuate / restore). Written through any region's replica; replicates everywhere. */
  async setRegionStatus(region: string, status: RegionStatus, reason: string): Promise<RegionStatusRecord> {
    const record: RegionStatusRecord = { region, status, reason, updatedAt: this.now() };
    await this.run('setRegionStatus', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...regionKey(region, 'meta'),
            ...record,
            [TABLE_KEYS.gsiPartitionKey]: REGIONS_GSI_PK,
            [TABLE_KEYS.gsiSortKey]: `${region}#meta`,
          },
        }),
      ),
    );
    return record;
  }

  /** The LB's periodic self-report; it never touches the status item. */
  async putRegionSummary(summary: RegionSummary): Promise<void> {
    await this.run('putRegionSummary', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...regionKey(summary.region, 'summary'),
            ...summary,
            [TABLE_KEYS.gsiPartitionKey]: REGIONS_GSI_PK,
            [TABLE_KEYS.gsiSortKey]: `${summary.region}#summary`,
          },
        }),
      ),
    );
  }

  /** Every region any LB or operator has written about, with its status and latest summary. */
  async listRegions(): Promise<RegionView[]> {
    const items = await this.queryAll('listRegions', {
      TableName: this.tableName,
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey },
      ExpressionAttributeValues: { ':gpk': REGIONS_GSI_PK },
    });
    const views = new Map<string, { status?: RegionStatusRecord; summary?: RegionSummary }>();
    for (const item of items) {
      const region = String(item.region);
      const view = views.get(region) ?? {};
      if (item.sk === 'meta') view.status = toRegionStatus(item);
      else view.summary = toRegionSummary(item);
      views.set(region, view);
    }
    return [...views.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([region, v]) => ({
        region,
        status: v.status?.status ?? 'active',
        reason: v.status?.reason ?? '',
        statusUpdatedAt: v.status?.updatedAt ?? null,
        summary: v.summary ?? null,
      }));
  }

  // ---- plumbing ------------------------------------------------------------------------------------

  /** One BatchGetItem, retrying the keys DynamoDB left unprocessed (it does so when throttled). */
  private async batchGetRooms(ids: readonly string[]): Promise<RoomRecord[]> {
    const rooms: RoomRecord[] = [];
    let keys: Record<string, unknown>[] = ids.map(roomKey);
    for (let round = 0; keys.length > 0; round++) {
      if (round === BATCH_GET_MAX_ROUNDS) {
        throw new ThrottledError(`getRooms on "${this.tableName}": ${keys.length} keys stayed unprocessed`);
      }
      if (round > 0) await sleep(BATCH_GET_RETRY_BASE_MS * 2 ** round);
      const out = await this.run('getRooms', () =>
        this.doc.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }),
        ),
      );
      for (const item of out.Responses?.[this.tableName] ?? []) rooms.push(toRoom(item));
      keys = out.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    }
    return rooms;
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, this.tableName, operation);
    }
  }

  private async queryAll(operation: string, input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.run(operation, () =>
        this.doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start })),
      );
      items.push(...((out.Items ?? []) as Item[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
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

function toRoom(item: Item): RoomRecord {
  return {
    id: String(item.id),
    serverId: String(item.serverId),
    region: String(item.region),
    version: Number(item.version),
    createdAt: Number(item.createdAt),
    updatedAt: Number(item.updatedAt),
  };
}

function toRegionStatus(item: Item): RegionStatusRecord {
  if (item.status !== 'active' && item.status !== 'evacuated') {
    throw new StoreError(
      `region item ${String(item.pk)} has an unknown status ${JSON.stringify(item.status)}`,
    );
  }
  return {
    region: String(item.region),
    status: item.status,
    reason: String(item.reason ?? ''),
    updatedAt: Number(item.updatedAt),
  };
}

function toRegionSummary(item: Item): RegionSummary {
  return {
    region: String(item.region),
    apiUrl: String(item.apiUrl),
    liveServers: Number(item.liveServers),
    load: Number(item.load),
    capacity: Number(item.capacity),
    reportedAt: Number(item.reportedAt),
  };
}
