/**
 * Room legs (`room#<id>` / `leg#<region>`): a room's peers of one region meet on one server of that
 * region, its leg; the legs of a room are connected by pipes (DESIGN "Cascading").
 *
 * Policy:
 *   - A room's first leg is its room item (`meta`, RoomRepository), whatever its region: a room of one
 *     region is exactly what it was before cascading. Every other region's leg is a `leg#<region>`
 *     item. So "the leg of region R" is the room item when the room item's region is R, else leg#R.
 *   - A leg item is written only by its own region (its LBs place and take it over, its media servers
 *     adopt, refresh and release it): its conditional writes are decided on the one replica that
 *     writes it, and global tables never resolve a conflict on it.
 *   - One query (the room's partition) reads the room item and every leg: how legs find each other.
 */
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { TABLE_KEYS } from './schema';
import type { Item, Table } from './Table';
import type { LegRecord, PlaceLegResult, RoomLegs } from './types';

/** Same lifetime as a room item: released when its last peer leaves, swept by TTL after a crash. */
const LEG_ITEM_TTL_S = 24 * 3_600;

const LEG_PREFIX = 'leg#';
const legKey = (roomId: string, region: string) => ({ pk: `room#${roomId}`, sk: `${LEG_PREFIX}${region}` });

export class LegRepository {
  constructor(
    private readonly table: Table,
    private readonly now: () => number,
  ) {}

  /**
   * The room item and every leg item of a room, strongly consistent on this replica: one query of the
   * room's partition. `legs` maps region → the server of that region's leg, the room item's region
   * taking precedence over a leg item of the same region (a stale leg after the room item moved there).
   */
  async ofRoom(roomId: string): Promise<RoomLegs> {
    const items = await this.table.queryAll('legs.ofRoom', {
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
      ExpressionAttributeValues: { ':pk': `room#${roomId}` },
      ConsistentRead: true,
    });
    const legItems = items.filter((i) => String(i.sk).startsWith(LEG_PREFIX)).map(toLeg);
    const meta = items.find((i) => i.sk === 'meta');
    const legs = new Map<string, LegRecord>();
    for (const leg of legItems) legs.set(leg.region, leg);
    if (meta) {
      legs.set(String(meta.region), {
        roomId,
        region: String(meta.region),
        serverId: String(meta.serverId),
        version: Number(meta.version),
        home: true,
        createdAt: Number(meta.createdAt),
        updatedAt: Number(meta.updatedAt),
      });
    }
    return { roomId, legs };
  }

  /** One leg item (not the room item), strongly consistent; null when none. */
  async get(roomId: string, region: string): Promise<LegRecord | null> {
    const all = await this.table.queryAll('legs.get', {
      KeyConditionExpression: '#pk = :pk AND #sk = :sk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
      ExpressionAttributeValues: { ':pk': `room#${roomId}`, ':sk': `${LEG_PREFIX}${region}` },
      ConsistentRead: true,
    });
    return all[0] ? toLeg(all[0]) : null;
  }

  /**
   * Places a region's leg on a server with a conditional write: new (`expectedVersion` undefined) or a
   * takeover (version match). A lost race is a result: the caller gets what the replica holds now.
   */
  async place(args: {
    roomId: string;
    region: string;
    serverId: string;
    expectedVersion?: number;
  }): Promise<PlaceLegResult> {
    const now = this.now();
    const takeover = args.expectedVersion !== undefined;
    const version = takeover ? args.expectedVersion! + 1 : 1;
    if (takeover) {
      const out = await this.table.runConditional('legs.place', () =>
        this.table.doc.send(
          new UpdateCommand({
            TableName: this.table.name,
            Key: legKey(args.roomId, args.region),
            UpdateExpression: 'SET serverId = :serverId, version = :next, updatedAt = :now, #ttl = :ttl',
            ConditionExpression: 'version = :expected',
            ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
            ExpressionAttributeValues: {
              ':serverId': args.serverId,
              ':next': version,
              ':expected': args.expectedVersion,
              ':now': now,
              ':ttl': Math.floor(now / 1000) + LEG_ITEM_TTL_S,
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return out ? { outcome: 'placed', leg: toLeg(out.Attributes!) } : this.lost(args.roomId, args.region);
    }
    const leg: LegRecord = {
      roomId: args.roomId,
      region: args.region,
      serverId: args.serverId,
      version,
      home: false,
      createdAt: now,
      updatedAt: now,
    };
    const out = await this.table.runConditional('legs.place', () =>
      this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: {
            ...legKey(args.roomId, args.region),
            roomId: args.roomId,
            region: args.region,
            serverId: args.serverId,
            version,
            createdAt: now,
            updatedAt: now,
            [TABLE_KEYS.ttlAttribute]: Math.floor(now / 1000) + LEG_ITEM_TTL_S,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    return out ? { outcome: 'placed', leg } : this.lost(args.roomId, args.region);
  }

  /** Deletes a leg only if `serverId` still holds it. */
  async release(roomId: string, region: string, serverId: string): Promise<boolean> {
    const out = await this.table.runConditional('legs.release', () =>
      this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.name,
          Key: legKey(roomId, region),
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeValues: { ':serverId': serverId },
        }),
      ),
    );
    return out !== null;
  }

  /** Pushes a leg's TTL forward, only if `serverId` still holds it (see RoomRepository.refresh). */
  async refresh(roomId: string, region: string, serverId: string): Promise<boolean> {
    const out = await this.table.runConditional('legs.refresh', () =>
      this.table.doc.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: legKey(roomId, region),
          UpdateExpression: 'SET #ttl = :ttl',
          ConditionExpression: 'serverId = :serverId',
          ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
          ExpressionAttributeValues: {
            ':serverId': serverId,
            ':ttl': Math.floor(this.now() / 1000) + LEG_ITEM_TTL_S,
          },
        }),
      ),
    );
    return out !== null;
  }

  private async lost(roomId: string, region: string): Promise<PlaceLegResult> {
    return { outcome: 'lost', current: await this.get(roomId, region) };
  }
}

function toLeg(item: Item): LegRecord {
  return {
    roomId: String(item.roomId),
    region: String(item.region),
    serverId: String(item.serverId),
    version: Number(item.version),
    home: false,
    createdAt: Number(item.createdAt),
    updatedAt: Number(item.updatedAt),
  };
}
