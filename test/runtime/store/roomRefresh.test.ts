/**
 * Rooms outlive a day (issue #15): a room item's TTL (`expiresAt`, 24 h from placement) is pushed
 * forward by the server that owns the room, and only by it. Real dynalite; the raw item is read with
 * the SDK so the test sees exactly what DynamoDB's TTL sweeper would.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { Store } from '../../../runtime/store';
import { logStoreCommands } from '../../support/commandLog';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';

const DAY_S = 24 * 3_600;
const HOUR_MS = 3_600_000;

let db: TestDynamo;
let base: DynamoDBClient;
let raw: DynamoDBDocumentClient;
let store: Store;
let clockMs = 1_700_000_000_000;

beforeAll(async () => {
  db = await startDynalite();
  base = new DynamoDBClient({ region: db.region, endpoint: db.endpoint, credentials: TEST_CREDENTIALS });
  raw = DynamoDBDocumentClient.from(base);
  store = new Store({
    region: db.region,
    tableName: db.tableName,
    endpoint: db.endpoint,
    credentials: TEST_CREDENTIALS,
    now: () => clockMs,
  });
});

afterAll(async () => {
  store?.close();
  base?.destroy();
  await db?.close();
});

async function item(roomId: string): Promise<Record<string, unknown> | undefined> {
  const out = await raw.send(
    new GetCommand({
      TableName: db.tableName,
      Key: { pk: `room#${roomId}`, sk: 'meta' },
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

test("the owner pushes the room's expiry 24 h past now; nothing else about the room changes", async () => {
  await store.rooms.place({ roomId: 'r-long', serverId: 'm-own', region: 'eu-west-1' });
  const placed = (await item('r-long'))!;
  expect(placed.expiresAt).toBe(Math.floor(clockMs / 1000) + DAY_S);

  // A call 23 hours in: without a refresh the item would expire within the hour.
  clockMs += 23 * HOUR_MS;
  const commands = logStoreCommands(store);
  expect(await store.rooms.refresh('r-long', 'm-own')).toBe(true);
  expect(commands).toEqual(['UpdateItemCommand']);
  const refreshed = (await item('r-long'))!;
  expect(refreshed.expiresAt).toBe(Math.floor(clockMs / 1000) + DAY_S);
  const { expiresAt: _before, ...rest } = placed;
  const { expiresAt: _after, ...restAfter } = refreshed;
  expect(restAfter).toEqual(rest);
});

test('a server that does not own the room cannot refresh it, and the item is left as it was', async () => {
  await store.rooms.place({ roomId: 'r-foreign', serverId: 'm-owner', region: 'eu-west-1' });
  const before = await item('r-foreign');
  clockMs += HOUR_MS;
  expect(await store.rooms.refresh('r-foreign', 'm-other')).toBe(false);
  expect(await item('r-foreign')).toEqual(before);
});

test('a room taken over elsewhere is no longer refreshed by its old server', async () => {
  await store.rooms.place({ roomId: 'r-moved', serverId: 'm-old', region: 'us-east-1' });
  const read = (await store.rooms.get('r-moved'))!;
  clockMs += HOUR_MS;
  await store.rooms.place({
    roomId: 'r-moved',
    serverId: 'm-new',
    region: 'eu-west-1',
    expectedVersion: read.version,
  });
  const after = await item('r-moved');
  clockMs += HOUR_MS;
  expect(await store.rooms.refresh('r-moved', 'm-old')).toBe(false);
  expect(await item('r-moved')).toEqual(after);
  expect(await store.rooms.refresh('r-moved', 'm-new')).toBe(true);
  expect((await item('r-moved'))!.expiresAt).toBe(Math.floor(clockMs / 1000) + DAY_S);
});

test('refreshing a room that has no item creates none', async () => {
  expect(await store.rooms.refresh('r-gone', 'm-own')).toBe(false);
  expect(await item('r-gone')).toBeUndefined();
});
