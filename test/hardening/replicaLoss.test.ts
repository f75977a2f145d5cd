/**
 * Replica loss: the local global table (three regions' replicas, real dynalites, the emulator's
 * replication) with ap-southeast-1 partitioned for a minute while every region keeps writing through the
 * data layer: heartbeats of its own servers, new rooms (some released again), its LB summary, and
 * takeovers of rooms and status writes that every region races for. After the partition heals:
 *
 *   - every replica holds exactly the same items (a full scan of each, compared);
 *   - no item is lost: each region's own items hold that region's last write everywhere, and a room a
 *     region created and never released exists everywhere;
 *   - each raced item holds the last write of one of the racers (last-writer-wins, never a mix);
 *   - replication dropped nothing.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startDynamoEmulator, type DynamoEmulator } from '../../runtime/local/dynamoEmulator';
import { Store } from '../../runtime/store';
import { TEST_CREDENTIALS } from '../support/dynalite';

const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-1'] as const;
type Region = (typeof REGIONS)[number];
const PARTITIONED: Region = 'ap-southeast-1';
const TABLE = 'replica-loss';
const LAG_MS = 100;
const PARTITION_MS = 60_000;
/** Writes go on this long after the partition heals, so the backlog lands under fresh traffic. */
const AFTER_HEAL_MS = 3_000;
/** Each writer's pause between operations: about ten writes a second per region. */
const WRITE_EVERY_MS = 100;
const SHARED_ROOMS = ['shared-0', 'shared-1', 'shared-2', 'shared-3'];
const SERVERS_PER_REGION = 3;

jest.setTimeout(120_000);

let emulator: DynamoEmulator;
const emulatorFaults: string[] = [];
const stores = {} as Record<Region, Store>;

beforeAll(async () => {
  emulator = await startDynamoEmulator({
    regions: REGIONS.map((name, i) => ({ name, address: `127.0.114.${i + 1}`, port: 0 })),
    tableName: TABLE,
    lagMs: LAG_MS,
    ttlSweepIntervalMs: 0,
    onError: (err, context) => emulatorFaults.push(`${context}: ${err.message}`),
  });
  for (const region of REGIONS) {
    stores[region] = new Store({
      region,
      tableName: TABLE,
      endpoint: emulator.endpoints[region],
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
  }
});

afterAll(async () => {
  for (const store of Object.values(stores)) store.close();
  await emulator?.close();
});

/** What one region's writer did, to check against every replica at the end. */
interface WriterLog {
  readonly region: Region;
  writes: number;
  /** server id → the `load` of its last heartbeat (a counter, so the value names the write). */
  readonly servers: Map<string, number>;
  /** rooms this region created → still held (false once released). */
  readonly ownRooms: Map<string, boolean>;
  lastSummary: number;
  /** raced key → the last value this region wrote to it. */
  readonly raced: Map<string, string>;
}

async function runWriter(region: Region, until: () => boolean): Promise<WriterLog> {
  const store = stores[region];
  const log: WriterLog = {
    region,
    writes: 0,
    servers: new Map(),
    ownRooms: new Map(),
    lastSummary: 0,
    raced: new Map(),
  };
  let tick = 0;
  while (!until()) {
    tick++;
    const op = tick % 5;
    if (op === 0) {
      const id = `${region}-s${tick % SERVERS_PER_REGION}`;
      await store.servers.heartbeat({
        id,
        region,
        endpoint: `ws://${region}:9000`,
        publicIp: '127.0.0.1',
        capacity: 100,
        load: tick,
        status: 'active',
        startedAt: 0,
      });
      log.servers.set(id, tick);
    } else if (op === 1) {
      const roomId = `${region}-room-${tick}`;
      const placed = await store.rooms.place({ roomId, serverId: `${region}-s0`, region });
      expect(placed.outcome).toBe('placed');
      log.ownRooms.set(roomId, true);
    } else if (op === 2) {
      // Release every third room this region created, a while after creating it.
      const held = [...log.ownRooms].filter(([, kept]) => kept).map(([id]) => id);
      const victim = held.length > 3 && tick % 3 === 0 ? held[0]! : undefined;
      if (victim) {
        expect(await store.rooms.release(victim, `${region}-s0`)).toBe(true);
        log.ownRooms.set(victim, false);
      } else {
        await store.regions.putSummary({
          region,
          apiUrl: `http://${region}.test`,
          liveServers: SERVERS_PER_REGION,
          load: 0,
          capacity: 300,
          reportedAt: tick,
        });
        log.lastSummary = tick;
      }
    } else if (op === 3) {
      // Every region takes the shared rooms over from whatever its own replica shows.
      const roomId = SHARED_ROOMS[tick % SHARED_ROOMS.length]!;
      const serverId = `${region}-s${tick % SERVERS_PER_REGION}`;
      const current = await store.rooms.get(roomId);
      const placed = await store.rooms.place({ roomId, serverId, region, expectedVersion: current?.version });
      if (placed.outcome === 'placed') log.raced.set(`room#${roomId}/meta`, serverId);
    } else {
      // An operator in every region flips the same status item (a drill gone wrong).
      const reason = `${region}-${tick}`;
      await store.regions.setStatus('us-east-1', 'active', reason);
      log.raced.set('region#us-east-1/meta', reason);
    }
    log.writes++;
    await new Promise((r) => setTimeout(r, WRITE_EVERY_MS));
  }
  return log;
}

async function scanReplica(region: Region): Promise<Map<string, Record<string, unknown>>> {
  const client = new DynamoDBClient({
    region,
    endpoint: emulator.endpoints[region],
    credentials: TEST_CREDENTIALS,
  });
  const doc = DynamoDBDocumentClient.from(client);
  const items = new Map<string, Record<string, unknown>>();
  let start: Record<string, unknown> | undefined;
  try {
    do {
      const page = await doc.send(
        new ScanCommand({ TableName: TABLE, ConsistentRead: true, ExclusiveStartKey: start }),
      );
      for (const item of page.Items ?? []) items.set(`${String(item.pk)}/${String(item.sk)}`, item);
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    client.destroy();
  }
  return items;
}

test(`${PARTITIONED} partitioned for a minute under writes everywhere: no item lost, every replica the same`, async () => {
  let stop = false;
  const writers = Promise.all(REGIONS.map((region) => runWriter(region, () => stop)));

  emulator.pause(PARTITIONED);
  const partitionedAt = Date.now();
  await new Promise((r) => setTimeout(r, PARTITION_MS));
  const held = emulator.stats().regions[PARTITIONED]!;
  expect(held.paused).toBe(true);
  // Both directions piled up: the partition was real.
  expect(held.inboundQueue).toBeGreaterThan(0);
  expect(held.outboundQueue).toBeGreaterThan(0);
  emulator.resume(PARTITIONED);
  const healedAfterMs = Date.now() - partitionedAt;
  await new Promise((r) => setTimeout(r, AFTER_HEAL_MS));
  stop = true;
  const logs = await writers;

  // Replication settles within a few lags once the writers stop; bounded.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const regions = Object.values(emulator.stats().regions);
    if (regions.every((r) => r.inboundQueue === 0 && r.outboundQueue === 0)) break;
    if (Date.now() > deadline)
      throw new Error(`replication did not settle: ${JSON.stringify(emulator.stats())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const [region, stats] of Object.entries(emulator.stats().regions)) {
    expect({ region, dropped: stats.dropped }).toEqual({ region, dropped: 0 });
  }

  const replicas = await Promise.all(REGIONS.map((r) => scanReplica(r)));
  const [reference] = replicas;
  for (const [i, replica] of replicas.entries()) {
    expect({ region: REGIONS[i], items: [...replica.keys()].sort() }).toEqual({
      region: REGIONS[i],
      items: [...reference!.keys()].sort(),
    });
    expect(Object.fromEntries(replica)).toEqual(Object.fromEntries(reference!));
  }

  for (const log of logs) {
    expect(log.writes).toBeGreaterThan(PARTITION_MS / WRITE_EVERY_MS / 4);
    for (const [id, load] of log.servers) {
      expect({ id, load: reference!.get(`server#${id}/meta`)?.load }).toEqual({ id, load });
    }
    for (const [roomId, kept] of log.ownRooms) {
      expect({ roomId, present: reference!.has(`room#${roomId}/meta`) }).toEqual({ roomId, present: kept });
    }
    expect(reference!.get(`region#${log.region}/summary`)?.reportedAt).toBe(log.lastSummary);
  }
  // Raced items: every replica agrees (checked above) on the last write of one of the racers.
  for (const key of new Set(logs.flatMap((l) => [...l.raced.keys()]))) {
    const item = reference!.get(key);
    const value = String(key.startsWith('room#') ? item?.serverId : item?.reason);
    const finals = logs.map((l) => l.raced.get(key)).filter((v): v is string => v !== undefined);
    expect({ key, value, isAFinalWrite: finals.includes(value) }).toEqual({
      key,
      value,
      isAFinalWrite: true,
    });
  }
  expect(emulatorFaults).toEqual([]);
  console.log(
    `replica loss: partition healed after ${healedAfterMs} ms; ${logs.map((l) => `${l.region} ${l.writes} writes`).join(', ')}; ${reference!.size} items on every replica`,
  );
});
