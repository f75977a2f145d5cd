import {
  Store,
  TableNotFoundError,
  StoreValidationError,
  type MediaServerRecord,
} from '../../../runtime/store';
import { logStoreCommands } from '../../support/commandLog';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';

let db: TestDynamo;
let clockMs = 1_700_000_000_000;
const now = () => clockMs;

function storeFor(opts: { tableName?: string } = {}): Store {
  return new Store({
    region: db.region,
    tableName: opts.tableName ?? db.tableName,
    endpoint: db.endpoint,
    credentials: TEST_CREDENTIALS,
    serverLivenessMs: 6_000,
    now,
  });
}

function server(
  id: string,
  overrides: Partial<MediaServerRecord> = {},
): Omit<MediaServerRecord, 'heartbeatAt'> {
  return {
    id,
    region: 'eu-west-1',
    endpoint: `ws://10.0.0.1:7000/${id}`,
    publicIp: '203.0.113.10',
    capacity: 100,
    load: 0,
    status: 'active',
    startedAt: clockMs,
    ...overrides,
  };
}

let store: Store;

beforeAll(async () => {
  db = await startDynalite();
  store = storeFor();
});

afterAll(async () => {
  store.close();
  await db.close();
});

describe('media servers', () => {
  it('registers, heartbeats, drains and removes a server', async () => {
    await store.servers.register(server('m-1'));
    expect(await store.servers.get('m-1')).toMatchObject({
      id: 'm-1',
      status: 'active',
      heartbeatAt: clockMs,
    });

    clockMs += 2_000;
    await store.servers.heartbeat(server('m-1', { load: 7 }));
    expect(await store.servers.get('m-1')).toMatchObject({ load: 7, heartbeatAt: clockMs });

    expect(await store.servers.drain('m-1')).toBe(true);
    expect((await store.servers.get('m-1'))?.status).toBe('draining');

    await store.servers.remove('m-1');
    expect(await store.servers.get('m-1')).toBeNull();
    expect(await store.servers.drain('m-1')).toBe(false);
  });

  it('lists only live servers of the asked region, by heartbeat age', async () => {
    await store.servers.register(server('live-a'));
    await store.servers.register(server('other-region', { region: 'us-east-1' }));
    clockMs += 5_000;
    await store.servers.register(server('live-b'));
    expect((await store.servers.listLive('eu-west-1')).map((s) => s.id).sort()).toEqual(['live-a', 'live-b']);

    // live-a's heartbeat is now 6 s old: past the liveness window; live-b's is 1 s old.
    clockMs += 1_000;
    expect((await store.servers.listLive('eu-west-1')).map((s) => s.id)).toEqual(['live-b']);
    expect((await store.servers.list('eu-west-1')).map((s) => s.id).sort()).toEqual(['live-a', 'live-b']);
    expect((await store.servers.listLive('us-east-1')).map((s) => s.id)).toEqual([]);
  });
});

describe('rooms', () => {
  it('places a new room once; a second placement of the same new room loses and learns the winner', async () => {
    const first = await store.rooms.place({ roomId: 'r-new', serverId: 'm-a', region: 'eu-west-1' });
    expect(first).toMatchObject({ outcome: 'placed', room: { id: 'r-new', serverId: 'm-a', version: 1 } });

    const second = await store.rooms.place({ roomId: 'r-new', serverId: 'm-b', region: 'eu-west-1' });
    expect(second).toEqual({
      outcome: 'lost',
      current: expect.objectContaining({ serverId: 'm-a', version: 1 }),
    });
    expect(await store.rooms.get('r-new')).toMatchObject({ serverId: 'm-a' });
  });

  it('lets exactly one of two concurrent racers win a new room, and the loser sees the winner', async () => {
    const other = storeFor();
    const results = await Promise.all([
      store.rooms.place({ roomId: 'r-race', serverId: 'm-x', region: 'eu-west-1' }),
      other.rooms.place({ roomId: 'r-race', serverId: 'm-y', region: 'eu-west-1' }),
    ]);
    other.close();
    const winners = results.filter((r) => r.outcome === 'placed');
    const losers = results.filter((r) => r.outcome === 'lost');
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    const winner = winners[0]!.outcome === 'placed' ? winners[0]!.room : null;
    const loser = losers[0]!.outcome === 'lost' ? losers[0]!.current : null;
    expect(loser).toEqual(winner);
    expect(await store.rooms.get('r-race')).toEqual(winner);
  });

  it('takes a room over with the version it read, and a stale version loses', async () => {
    await store.rooms.place({ roomId: 'r-take', serverId: 'm-old', region: 'us-east-1' });
    const read = (await store.rooms.get('r-take'))!;

    clockMs += 10;
    const takeover = await store.rooms.place({
      roomId: 'r-take',
      serverId: 'm-new',
      region: 'eu-west-1',
      expectedVersion: read.version,
    });
    expect(takeover).toMatchObject({
      outcome: 'placed',
      room: { serverId: 'm-new', region: 'eu-west-1', version: 2, createdAt: read.createdAt },
    });

    const stale = await store.rooms.place({
      roomId: 'r-take',
      serverId: 'm-late',
      region: 'eu-west-1',
      expectedVersion: read.version,
    });
    expect(stale).toEqual({
      outcome: 'lost',
      current: expect.objectContaining({ serverId: 'm-new', version: 2 }),
    });

    expect((await store.rooms.list('eu-west-1')).map((r) => r.id)).toContain('r-take');
    expect((await store.rooms.list('us-east-1')).map((r) => r.id)).not.toContain('r-take');
  });

  it('answers concurrent room reads with one request, each caller its own room or null', async () => {
    await store.rooms.place({ roomId: 'r-batch-1', serverId: 'm-a', region: 'eu-west-1' });
    await store.rooms.place({ roomId: 'r-batch-2', serverId: 'm-b', region: 'eu-west-1' });
    const reader = storeFor();
    const commands = logStoreCommands(reader);

    const rooms = await Promise.all(
      ['r-batch-1', 'r-batch-absent', 'r-batch-2', 'r-batch-1'].map((id) => reader.rooms.get(id)),
    );
    expect(rooms.map((room) => room?.serverId ?? null)).toEqual(['m-a', null, 'm-b', 'm-a']);
    expect(commands).toEqual(['BatchGetItemCommand']);

    // A read on its own stays a plain GetItem.
    expect(await reader.rooms.get('r-batch-2')).toMatchObject({ id: 'r-batch-2', serverId: 'm-b' });
    expect(commands).toEqual(['BatchGetItemCommand', 'GetItemCommand']);
    reader.close();
  });

  it('reads more rooms than one BatchGetItem takes, in the order asked', async () => {
    const ids = Array.from({ length: 130 }, (_, i) => `r-many-${i}`);
    for (const id of ids.filter((_, i) => i % 3 === 0)) {
      await store.rooms.place({ roomId: id, serverId: `m-${id}`, region: 'eu-west-1' });
    }
    const rooms = await store.rooms.getMany([...ids, ids[3]!]);
    expect(rooms).toHaveLength(131);
    rooms.slice(0, 130).forEach((room, i) => {
      expect(room?.serverId ?? null).toBe(i % 3 === 0 ? `m-r-many-${i}` : null);
    });
    expect(rooms[130]).toMatchObject({ id: 'r-many-3' });
  });

  it('retries the keys a batch read left unprocessed, as DynamoDB does when it throttles', async () => {
    await store.rooms.place({ roomId: 'r-slow-1', serverId: 'm-a', region: 'eu-west-1' });
    await store.rooms.place({ roomId: 'r-slow-2', serverId: 'm-b', region: 'eu-west-1' });
    const reader = storeFor();
    let batches = 0;
    reader.client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'BatchGetItemCommand' || batches++ > 0) return result;
        // The first answer holds one room back, as a throttled BatchGetItem does.
        const output = result.output as {
          Responses: Record<string, Record<string, { S?: string }>[]>;
          UnprocessedKeys?: Record<string, { Keys: Record<string, unknown>[] }>;
        };
        const held = output.Responses[db.tableName]!.pop()!;
        output.UnprocessedKeys = { [db.tableName]: { Keys: [{ pk: held.pk, sk: held.sk }] } };
        return result;
      },
      { step: 'initialize', name: 'throttleOnce' },
    );

    const rooms = await reader.rooms.getMany(['r-slow-1', 'r-slow-2']);
    expect(rooms.map((room) => room?.serverId)).toEqual(['m-a', 'm-b']);
    expect(batches).toBe(2);
    reader.close();
  });

  it('releases a room only for the server that owns it', async () => {
    await store.rooms.place({ roomId: 'r-rel', serverId: 'm-own', region: 'eu-west-1' });
    expect(await store.rooms.release('r-rel', 'm-thief')).toBe(false);
    expect(await store.rooms.get('r-rel')).not.toBeNull();
    expect(await store.rooms.release('r-rel', 'm-own')).toBe(true);
    expect(await store.rooms.get('r-rel')).toBeNull();
  });
});

describe('regions', () => {
  it('treats a region without a status item as active, and reads back what is set', async () => {
    expect(await store.regions.getStatus('ap-southeast-1')).toMatchObject({ status: 'active' });
    await store.regions.setStatus('us-east-1', 'evacuated', 'chaos drill');
    expect(await store.regions.getStatus('us-east-1')).toMatchObject({
      status: 'evacuated',
      reason: 'chaos drill',
      updatedAt: clockMs,
    });
  });

  it('keeps the LB summary and the operator status apart, and lists both per region', async () => {
    await store.regions.setStatus('us-east-1', 'evacuated', 'drill');
    await store.regions.putSummary({
      region: 'us-east-1',
      apiUrl: 'https://us-east-1.api.example.com',
      liveServers: 2,
      load: 3,
      capacity: 200,
      reportedAt: clockMs,
    });
    await store.regions.putSummary({
      region: 'eu-west-1',
      apiUrl: 'https://eu-west-1.api.example.com',
      liveServers: 1,
      load: 0,
      capacity: 100,
      reportedAt: clockMs,
    });
    // The summary refresh must not have reset the evacuation.
    expect((await store.regions.getStatus('us-east-1')).status).toBe('evacuated');

    const regions = await store.regions.list();
    expect(regions.map((r) => [r.region, r.status, r.summary?.apiUrl])).toEqual([
      ['eu-west-1', 'active', 'https://eu-west-1.api.example.com'],
      ['us-east-1', 'evacuated', 'https://us-east-1.api.example.com'],
    ]);
  });
});

describe('errors', () => {
  it('reports a missing table as TableNotFoundError', async () => {
    const missing = storeFor({ tableName: 'no-such-table' });
    await expect(missing.rooms.get('r')).rejects.toBeInstanceOf(TableNotFoundError);
    await expect(missing.rooms.get('r')).rejects.toThrow(/table "no-such-table" not found/);
    // A batch's failure reaches every caller in it.
    const batch = ['r', 's'].map((id) => missing.rooms.get(id));
    for (const read of batch) await expect(read).rejects.toBeInstanceOf(TableNotFoundError);
    missing.close();
  });

  it('reports a request DynamoDB rejects as StoreValidationError', async () => {
    // DynamoDB items are limited to 400 KB.
    const huge = { ...server('huge'), endpoint: 'x'.repeat(410_000), heartbeatAt: clockMs };
    await expect(store.servers.put(huge)).rejects.toBeInstanceOf(StoreValidationError);
    expect(await store.servers.get('huge')).toBeNull();
  });
});
