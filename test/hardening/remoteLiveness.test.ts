/**
 * Liveness across regions tolerates replication lag and clock skew. Another region's heartbeats reach
 * a replica through replication, late, stamped with the writer's clock. An LB that judged them with the
 * same window as its own region's took over healthy remote rooms in bulk as soon as lag and skew added
 * up to a few seconds. On the local DynamoDB emulator with a 3 s replication lag and a 1.5 s clock skew,
 * an LB in eu-west-1 serves joins for rooms on healthy us-east-1 servers for twelve seconds: every join
 * stays on the room's server and no room item changes.
 */
import { buildApp } from '../../runtime/lb/app';
import { lbConfig } from '../../runtime/lb/config';
import { startDynamoEmulator, type DynamoEmulator } from '../../runtime/local/dynamoEmulator';
import { Store, type MediaServerRecord } from '../../runtime/store';
import { JOIN_KEYS, joinToken, MEDIA_KEYS } from '../runtime/lb/lbHarness';

jest.setTimeout(60_000);

const TABLE = 'liveness-rooms';
const LAG_MS = 3_000;
const SKEW_MS = 1_500;
const HEARTBEAT_MS = 2_000;
const OBSERVE_MS = 12_000;
const ROOMS = Array.from({ length: 8 }, (_, i) => `remote-room-${i}`);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

let emulator: DynamoEmulator;
const stores: Store[] = [];
const timers: NodeJS.Timeout[] = [];
/**
 * Heartbeats still in flight: awaited before the stores and the emulator close, or the last one fails
 * after this file ended and its rejection fails whichever suite the jest worker runs next.
 */
const beats = new Set<Promise<unknown>>();

function storeFor(region: string, now?: () => number): Store {
  const store = new Store({
    region,
    tableName: TABLE,
    endpoint: emulator.endpoints[region],
    credentials,
    now,
  });
  stores.push(store);
  return store;
}

function server(id: string, region: string): Omit<MediaServerRecord, 'heartbeatAt'> {
  return {
    id,
    region,
    endpoint: 'ws://127.0.0.1:1',
    publicIp: '127.0.0.1',
    capacity: 100,
    load: 0,
    rooms: 0,
    status: 'active',
    startedAt: Date.now(),
  };
}

beforeAll(async () => {
  emulator = await startDynamoEmulator({
    regions: [
      { name: 'us-east-1', address: '127.0.140.1', port: 0 },
      { name: 'eu-west-1', address: '127.0.141.1', port: 0 },
    ],
    tableName: TABLE,
    lagMs: LAG_MS,
  });
});

afterAll(async () => {
  timers.forEach(clearInterval);
  await Promise.allSettled(beats);
  stores.forEach((s) => s.close());
  await emulator?.close();
});

test(`${LAG_MS} ms of replication lag and ${SKEW_MS} ms of skew move no healthy remote room`, async () => {
  const us = storeFor('us-east-1');
  const eu = storeFor('eu-west-1');
  // Each region's servers heartbeat into their own replica, as media servers do.
  const track = (write: Promise<unknown>) => {
    beats.add(write);
    void write.finally(() => beats.delete(write));
  };
  const beat = () => {
    track(us.servers.heartbeat(server('us-a', 'us-east-1')));
    track(us.servers.heartbeat(server('us-b', 'us-east-1')));
    // Full: the eu LB cannot give its joiners a leg of their own (cascading), so every join goes to
    // the room's us-east-1 server and judges that server's liveness.
    track(eu.servers.heartbeat({ ...server('eu-a', 'eu-west-1'), load: 100 }));
  };
  beat();
  timers.push(setInterval(beat, HEARTBEAT_MS));
  for (const [i, room] of ROOMS.entries()) {
    await us.rooms.place({ roomId: room, serverId: i % 2 ? 'us-a' : 'us-b', region: 'us-east-1' });
  }
  await us.regions.putSummary({
    region: 'us-east-1',
    apiUrl: 'http://127.0.140.1:9',
    liveServers: 2,
    load: 0,
    capacity: 200,
    reportedAt: Date.now(),
  });
  // Let everything reach eu-west-1's replica once.
  await new Promise((r) => setTimeout(r, LAG_MS + 1_000));

  // The eu LB's clock runs ahead of the writers': skew on top of lag.
  const clock = () => Date.now() + SKEW_MS;
  const app = await buildApp({
    store: storeFor('eu-west-1', clock),
    clock,
    config: lbConfig({
      region: 'eu-west-1',
      publicApiUrl: 'http://127.0.141.1:8080',
      joinTokenKeys: JOIN_KEYS,
      mediaTokenKeys: MEDIA_KEYS,
      fleetRefreshMs: 1_000,
      summaryIntervalMs: 0,
      limits: { joinsPerMinute: 1e6, requestsPerMinute: 1e6 },
    }),
  });
  await app.ready();
  const answered = new Map<string, number>();
  try {
    const until = Date.now() + OBSERVE_MS;
    for (let i = 0; Date.now() < until; i++) {
      const room = ROOMS[i % ROOMS.length]!;
      const res = await app.inject({
        method: 'POST',
        url: `/v1/rooms/${room}/join`,
        headers: { authorization: `Bearer ${await joinToken(room, `user-${i}`)}` },
      });
      expect(res.statusCode).toBe(200);
      const key = `${res.json().serverId}`;
      answered.set(key, (answered.get(key) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await app.close();
  }
  // Every join went to the room's own us-east-1 server, and no room item moved.
  expect([...answered.keys()].sort()).toEqual(['us-a', 'us-b']);
  await new Promise((r) => setTimeout(r, LAG_MS + 500));
  for (const room of ROOMS)
    expect(await us.rooms.get(room)).toMatchObject({ version: 1, region: 'us-east-1' });
});
