/**
 * The local global table through the real AWS SDK: replication after the lag, last-writer-wins,
 * partitions that lose nothing, and the dead-endpoint controls.
 */
import {
  BatchWriteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  DeleteItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type DynamoEmulator, startDynamoEmulator } from '../../../runtime/local/dynamoEmulator';
import { Store } from '../../../runtime/store';

const TABLE = 'emu-rooms';
const LAG_MS = 300;
const REGIONS = [
  { name: 'us-east-1', address: '127.0.61.1', port: 0 },
  { name: 'eu-west-1', address: '127.0.62.1', port: 0 },
  { name: 'ap-southeast-1', address: '127.0.63.1', port: 0 },
];
const NAMES = REGIONS.map((r) => r.name);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

let emulator: DynamoEmulator;
const clients: Record<string, DynamoDBClient> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const key = (id: string) => ({ pk: { S: `test#${id}` }, sk: { S: 'meta' } });

async function read(region: string, id: string, client = clients[region]!): Promise<string | null> {
  const out = await client.send(new GetItemCommand({ TableName: TABLE, Key: key(id), ConsistentRead: true }));
  return out.Item ? (out.Item.value?.S ?? '') : null;
}

async function put(region: string, id: string, value: string): Promise<void> {
  await clients[region]!.send(
    new PutItemCommand({ TableName: TABLE, Item: { ...key(id), value: { S: value } } }),
  );
}

/** Waits until every region holds `expected` (null: absent) for the item. */
async function everywhere(id: string, expected: string | null, timeoutMs?: number): Promise<void> {
  await waitFor(
    `${id}=${expected} in every region`,
    async () =>
      (await Promise.all(NAMES.map((r) => read(r, id)))).every((v) => v === expected) ? true : undefined,
    timeoutMs,
  );
}

/** `timeoutMs` bounds a read from a blackholed endpoint; elsewhere it only needs to outlast a busy CI machine. */
function clientFor(region: string, timeoutMs = 5_000): DynamoDBClient {
  return new DynamoDBClient({
    region,
    endpoint: emulator.endpoints[region],
    credentials,
    maxAttempts: 1,
    // Without throwOnRequestTimeout the SDK only warns when requestTimeout passes and waits forever.
    requestHandler: new NodeHttpHandler({
      connectionTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
    }),
  });
}

beforeAll(async () => {
  emulator = await startDynamoEmulator({
    regions: REGIONS,
    tableName: TABLE,
    lagMs: LAG_MS,
    ttlSweepIntervalMs: 200,
  });
  for (const name of NAMES) clients[name] = clientFor(name);
});

afterAll(async () => {
  Object.values(clients).forEach((c) => c.destroy());
  await emulator?.close();
});

afterEach(() => {
  for (const name of NAMES) emulator.resume(name);
  emulator.setLag(LAG_MS);
});

test('each region has its own endpoint on its address with the table as the CDK declares it', async () => {
  expect(Object.keys(emulator.endpoints)).toEqual(NAMES);
  REGIONS.forEach((r) =>
    expect(emulator.endpoints[r.name]).toMatch(
      new RegExp(`^http://${r.address.replace(/\./g, '\\.')}:\\d+$`),
    ),
  );
  for (const name of NAMES) {
    const { Table } = await clients[name]!.send(new DescribeTableCommand({ TableName: TABLE }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual(['gsi1']);
  }
});

test('a write reaches the other regions after the lag, not before', async () => {
  const before = Date.now();
  await put('us-east-1', 'lag', 'v1');
  expect(await read('us-east-1', 'lag')).toBe('v1');
  expect(await read('eu-west-1', 'lag')).toBeNull();
  const seenAt = await waitFor('replication to eu-west-1', async () =>
    (await read('eu-west-1', 'lag')) === 'v1' ? Date.now() : undefined,
  );
  // A timer may fire a millisecond early; the lag is a lower bound otherwise.
  expect(seenAt - before).toBeGreaterThanOrEqual(LAG_MS - 2);
  await everywhere('lag', 'v1');
  const stats = emulator.stats();
  expect(stats.lagMs).toBe(LAG_MS);
  expect(stats.regions['eu-west-1']!.lagP50Ms).toBeGreaterThanOrEqual(LAG_MS - 2);
  expect(stats.regions['eu-west-1']!.applied).toBeGreaterThan(0);
});

test('updates and deletes replicate', async () => {
  await put('eu-west-1', 'upd', 'v1');
  await everywhere('upd', 'v1');
  await clients['ap-southeast-1']!.send(
    new UpdateItemCommand({
      TableName: TABLE,
      Key: key('upd'),
      UpdateExpression: 'SET #v = :v',
      ExpressionAttributeNames: { '#v': 'value' },
      ExpressionAttributeValues: { ':v': { S: 'v2' } },
    }),
  );
  await everywhere('upd', 'v2');
  await clients['us-east-1']!.send(new DeleteItemCommand({ TableName: TABLE, Key: key('upd') }));
  await everywhere('upd', null);
});

test('batch writes replicate every put and delete', async () => {
  await put('us-east-1', 'batch-old', 'old');
  await everywhere('batch-old', 'old');
  await clients['eu-west-1']!.send(
    new BatchWriteItemCommand({
      RequestItems: {
        [TABLE]: [
          { PutRequest: { Item: { ...key('batch-a'), value: { S: 'a' } } } },
          { PutRequest: { Item: { ...key('batch-b'), value: { S: 'b' } } } },
          { DeleteRequest: { Key: key('batch-old') } },
        ],
      },
    }),
  );
  await everywhere('batch-a', 'a');
  await everywhere('batch-b', 'b');
  await everywhere('batch-old', null);
});

test('concurrent writes to one item in two regions converge everywhere to the later write', async () => {
  emulator.setLag(500);
  await put('us-east-1', 'lww-1', 'first');
  await put('eu-west-1', 'lww-2', 'first');
  await sleep(5);
  // Both later writes happen before either earlier one has replicated.
  await put('eu-west-1', 'lww-1', 'second');
  await put('us-east-1', 'lww-2', 'second');
  expect(await read('us-east-1', 'lww-1')).toBe('first');
  await everywhere('lww-1', 'second');
  await everywhere('lww-2', 'second');
  // Let any straggling delivery land, then check nothing flipped back.
  await sleep(600);
  await everywhere('lww-1', 'second', 0);
  expect(emulator.stats().regions['eu-west-1']!.superseded).toBeGreaterThan(0);
});

test('a partition keeps writes from both sides and delivers them all on resume', async () => {
  emulator.pause('ap-southeast-1');
  await put('ap-southeast-1', 'part-inside', 'in');
  await put('us-east-1', 'part-outside', 'out');
  await put('us-east-1', 'part-conflict', 'early');
  await put('ap-southeast-1', 'part-delete', 'doomed');
  await sleep(5);
  await put('ap-southeast-1', 'part-conflict', 'late');
  await clients['ap-southeast-1']!.send(new DeleteItemCommand({ TableName: TABLE, Key: key('part-delete') }));

  await sleep(LAG_MS * 3);
  // The partitioned region still answers locally but neither sends nor receives.
  expect(await read('ap-southeast-1', 'part-inside')).toBe('in');
  expect(await read('ap-southeast-1', 'part-outside')).toBeNull();
  expect(await read('us-east-1', 'part-inside')).toBeNull();
  expect(await read('eu-west-1', 'part-outside')).toBe('out');
  const held = emulator.stats().regions['ap-southeast-1']!;
  expect(held.paused).toBe(true);
  expect(held.inboundQueue).toBeGreaterThan(0);
  expect(held.outboundQueue).toBeGreaterThan(0);

  emulator.resume('ap-southeast-1');
  await everywhere('part-inside', 'in');
  await everywhere('part-outside', 'out');
  await everywhere('part-conflict', 'late');
  await everywhere('part-delete', null);
  await waitFor('queues to drain', async () => {
    const regions = Object.values(emulator.stats().regions);
    return regions.every((r) => r.inboundQueue === 0 && r.outboundQueue === 0 && r.dropped === 0)
      ? true
      : undefined;
  });
});

test('a failed conditional write changes nothing anywhere', async () => {
  await put('us-east-1', 'cond', 'kept');
  await everywhere('cond', 'kept');
  await expect(
    clients['eu-west-1']!.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { ...key('cond'), value: { S: 'clobbered' } },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    ),
  ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  await sleep(LAG_MS * 2);
  await everywhere('cond', 'kept', 0);
});

test('the data layer works against a region endpoint and its writes replicate', async () => {
  const stores = NAMES.map(
    (region) => new Store({ region, tableName: TABLE, endpoint: emulator.endpoints[region], credentials }),
  );
  const [east, west] = stores as [Store, Store, Store];
  const placed = await east.rooms.place({ roomId: 'r1', serverId: 's1', region: 'us-east-1' });
  expect(placed.outcome).toBe('placed');
  const room = await waitFor('room in eu-west-1', async () => (await west.rooms.get('r1')) ?? undefined);
  expect(room).toMatchObject({ serverId: 's1', region: 'us-east-1' });
});

test('expired items are swept everywhere, live ones stay', async () => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  const withExpiry = (id: string, expiresAt: number) => ({
    TableName: TABLE,
    Item: { ...key(id), value: { S: id }, expiresAt: { N: String(expiresAt) } },
  });
  await clients['us-east-1']!.send(new PutItemCommand(withExpiry('ttl-live', nowSeconds + 3600)));
  await clients['us-east-1']!.send(new PutItemCommand(withExpiry('ttl-expired', nowSeconds - 10)));
  await everywhere('ttl-live', 'ttl-live');
  // Past the lag, the expired item's replicated put cannot bring it back anywhere.
  await sleep(LAG_MS * 2);
  await everywhere('ttl-expired', null);
  await everywhere('ttl-live', 'ttl-live', 0);
});

test('a stopped endpoint refuses connections, a blackholed one never answers, and both come back', async () => {
  // Fresh clients: a pooled connection to a dead endpoint fails with a reset instead.
  const fresh = () => clientFor('eu-west-1', 500);
  await emulator.stopEndpoint('eu-west-1');
  expect(emulator.stats().regions['eu-west-1']!.endpointState).toBe('refusing');
  await expect(read('eu-west-1', 'lag', fresh())).rejects.toThrow(/ECONNREFUSED/);
  // Its data still receives replicated writes: only the endpoint is down.
  await put('us-east-1', 'while-down', 'v');

  await emulator.stopEndpoint('eu-west-1', 'blackhole');
  expect(emulator.stats().regions['eu-west-1']!.endpointState).toBe('blackholed');
  await expect(read('eu-west-1', 'lag', fresh())).rejects.toThrow(/timed out|Timeout|socket hang up/i);

  await emulator.startEndpoint('eu-west-1');
  expect(emulator.stats().regions['eu-west-1']!.endpointState).toBe('up');
  await everywhere('while-down', 'v');
});

test('control calls name unknown regions and bad lags', () => {
  expect(() => emulator.pause('mars-1')).toThrow(/unknown region "mars-1"/);
  expect(() => emulator.setLag(-1)).toThrow(/lagMs must be a number >= 0/);
});
