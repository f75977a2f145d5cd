/**
 * Rooms outlive a day (issue #15): a room item carries a 24 h TTL from its placement, so a call longer
 * than that would lose its item to DynamoDB's sweeper and the next joiner would be placed somewhere
 * else (a split call). The server that owns a live room pushes the TTL forward on its room-check
 * cadence; a room the item gives to another server is not touched. Real media server in this process,
 * real dynalite; the refresh period is shortened from its hour to a second so the test can watch it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { Store } from '../../runtime/store';
import { TEST_CREDENTIALS } from '../support/dynalite';
import { waitFor } from '../support/wrtcPeer';
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(30_000);

const SERVER_ID = 'lifetime-media';
let media: InProcessMediaServer;
let store: Store;
let base: DynamoDBClient;
let raw: DynamoDBDocumentClient;
let requestId = 1;
const open: RawSignaling[] = [];

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: SERVER_ID,
    address: '127.0.117.1',
    rtcMinPort: 40_200,
    rtcMaxPort: 40_219,
    config: { roomCheckIntervalMs: 100, roomRefreshIntervalMs: 1_000 },
  });
  const { dynamo } = media;
  store = new Store({
    region: dynamo.region,
    tableName: dynamo.tableName,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
  base = new DynamoDBClient({
    region: dynamo.region,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
  raw = DynamoDBDocumentClient.from(base);
});

afterAll(async () => {
  for (const conn of open) conn.close();
  store?.close();
  base?.destroy();
  await media?.close();
});

async function expiresAt(roomId: string): Promise<number | undefined> {
  const out = await raw.send(
    new GetCommand({
      TableName: media.dynamo.tableName,
      Key: { pk: `room#${roomId}`, sk: 'meta' },
      ConsistentRead: true,
    }),
  );
  return out.Item?.expiresAt as number | undefined;
}

async function join(roomId: string, peerId: string): Promise<RawSignaling> {
  const conn = await RawSignaling.open(media.signalingUrl(roomId));
  open.push(conn);
  await conn.request(requestId++, 'join', { token: await media.mediaToken(roomId, peerId) });
  return conn;
}

test("the owning server keeps pushing a live room's expiry forward", async () => {
  await store.rooms.place({ roomId: 'long-call', serverId: SERVER_ID, region: media.dynamo.region });
  const placed = (await expiresAt('long-call'))!;
  const conn = await join('long-call', 'marathoner');
  await waitFor(
    async () => ((await expiresAt('long-call')) ?? 0) > placed,
    'the room item expiry to move forward',
    8_000,
    200,
  );
  const refreshed = (await expiresAt('long-call'))!;
  await waitFor(
    async () => ((await expiresAt('long-call')) ?? 0) > refreshed,
    'a second refresh',
    8_000,
    200,
  );
  expect(await store.rooms.get('long-call')).toMatchObject({ serverId: SERVER_ID, version: 1 });
  expect(await conn.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
});

test('a room whose item names another server is sent there, and its item is not refreshed', async () => {
  await store.rooms.place({ roomId: 'elsewhere', serverId: 'media-other', region: media.dynamo.region });
  const placed = await expiresAt('elsewhere');
  const conn = await join('elsewhere', 'misrouted');
  expect(await conn.closed).toMatchObject({ code: 4000 });
  expect(conn.notifications).toContainEqual({
    notification: 'rejoin',
    data: { reason: 'room_moved', serverId: SERVER_ID },
  });
  // Long enough for refreshes to have happened, had the server made any.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  expect(await expiresAt('elsewhere')).toBe(placed);
  expect(await store.rooms.get('elsewhere')).toMatchObject({ serverId: 'media-other' });
});
