/**
 * Room items (`room#<id>` / `meta`): which server, in which region, hosts a room.
 *
 * Policy: conditional writes check this region's replica only, and global tables resolve conflicts
 * last-writer-wins per item, so a placement can win here and lose globally; media servers re-read
 * their rooms and converge. No TransactWriteItems: it is region-local in global tables and the local
 * emulator lacks it. Reads are strongly consistent on this replica and never cached.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import DataLoader from 'dataloader';
import { TABLE_KEYS } from './schema';
import { BATCH_GET_MAX_KEYS, type Item, type Table } from './Table';
import type { PlaceRoomResult, RoomRecord } from './types';

/**
 * Rooms are released by their server when the last peer leaves; TTL only sweeps rooms of crashed servers.
 * A live room's owner pushes it forward (refresh) so a call may last longer than this.
 */
const ROOM_ITEM_TTL_S = 24 * 3_600;

const roomKey = (id: string) => ({ pk: `room#${id}`, sk: 'meta' });

export class RoomRepository {
  /**
   * Room reads that arrive in the same event-loop turn share one request. Each SDK call costs the LB
   * more CPU than the rest of a join, and under load many joins are parsed in one turn; at low load a
   * batch is one read and costs one turn of latency. Never cached: every join reads the replica.
   */
  private readonly reads = new DataLoader<string, RoomRecord | null>((ids) => this.getMany(ids), {
    cache: false,
    maxBatchSize: BATCH_GET_MAX_KEYS,
    batchScheduleFn: (dispatch) => setImmediate(dispatch),
  });

  constructor(
    private readonly table: Table,
    private readonly now: () => number,
  ) {}

  /** One room's assignment, strongly consistent on this replica (batched with concurrent reads). */
  get(id: string): Promise<RoomRecord | null> {
    return this.reads.load(id);
  }

  /** Rooms' assignments in the order asked, `null` for a room with no item; strongly consistent. */
  async getMany(ids: readonly string[]): Promise<(RoomRecord | null)[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 1) {
      const out = await this.table.run('rooms.get', () =>
        this.table.doc.send(
          new GetCommand({ TableName: this.table.name, Key: roomKey(unique[0]!), ConsistentRead: true }),
        ),
      );
      const room = out.Item ? toRoom(out.Item) : null;
      return ids.map(() => room);
    }
    const items = await this.table.batchGet('rooms.getMany', unique.map(roomKey));
    const found = new Map(items.map((item) => [String(item.id), toRoom(item)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /**
   * Assigns a room to a server with a conditional write: `attribute_not_exists` for a new room
   * (`expectedVersion` undefined), a `version` match for a takeover. A lost race is a result, not an
   * exception: the caller gets what the replica holds now and usually sends its peer there.
   */
  async place(args: {
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
    if (takeover) {
      // An update keeps createdAt; a takeover is the same room moving, not a new one.
      const out = await this.table.runConditional('rooms.place', () =>
        this.table.doc.send(
          new UpdateCommand({
            TableName: this.table.name,
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
        ),
      );
      return out ? { outcome: 'placed', room: toRoom(out.Attributes!) } : this.lost(args.roomId);
    }
    const out = await this.table.runConditional('rooms.place', () =>
      this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...roomKey(args.roomId),
            ...room,
            [TABLE_KEYS.gsiPartitionKey]: `region#${args.region}`,
            [TABLE_KEYS.gsiSortKey]: `room#${args.roomId}`,
            [TABLE_KEYS.ttlAttribute]: Math.floor(now / 1000) + ROOM_ITEM_TTL_S,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    return out ? { outcome: 'placed', room } : this.lost(args.roomId);
  }

  /** Deletes a room only if `serverId` still owns it (a room taken over elsewhere must stay). */
  async release(roomId: string, serverId: string): Promise<boolean> {
    const out = await this.table.runConditional('rooms.release', () =>
      this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.name,
          Key: roomKey(roomId),
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeValues: { ':serverId': serverId },
        }),
      ),
    );
    return out !== null;
  }

  /**
   * Pushes a room item's TTL (`expiresAt`) to 24 h from now, only if `serverId` still owns the room:
   * the owner of a live room calls it now and then so a call longer than a day keeps its item. Nothing
   * else changes (not `version`, which placements are conditioned on). False, not an error, when the
   * condition fails: the room has moved to another server or its item is gone (no item is created).
   */
  async refresh(roomId: string, serverId: string): Promise<boolean> {
    const out = await this.table.runConditional('rooms.refresh', () =>
      this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: roomKey(roomId),
          UpdateExpression: 'SET #ttl = :ttl',
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
          ExpressionAttributeValues: {
            ':serverId': serverId,
            ':ttl': Math.floor(this.now() / 1000) + ROOM_ITEM_TTL_S,
          },
        }),
      ),
    );
    return out !== null;
  }

  /** Rooms currently assigned to servers of a region (GSI `region#<r>`, prefix `room#`). */
  async list(region: string): Promise<RoomRecord[]> {
    const items = await this.table.queryAll('rooms.list', {
      IndexName: TABLE_KEYS.gsiName,
      KeyConditionExpression: '#gpk = :gpk AND begins_with(#gsk, :prefix)',
      ExpressionAttributeNames: { '#gpk': TABLE_KEYS.gsiPartitionKey, '#gsk': TABLE_KEYS.gsiSortKey },
      ExpressionAttributeValues: { ':gpk': `region#${region}`, ':prefix': 'room#' },
    });
    return items.map(toRoom);
  }

  /** The placement lost its condition: what this replica holds now (null if deleted since). */
  private async lost(roomId: string): Promise<PlaceRoomResult> {
    return { outcome: 'lost', current: await this.get(roomId) };
  }
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
