/**
 * The signaling protocol's guards, rooms moving, workers dying and load reporting, against a real
 * media server process (two real mediasoup workers) and a real dynalite. No WebRTC media here: the
 * clients speak the protocol only (realMedia.test.ts sends media).
 */
import WebSocket from 'ws';
import { signMediaToken, singleKeySet } from '../../../runtime/protocol/tokens';
import { MAX_SIGNALING_FRAME_BYTES, SIGNALING_CLOSE } from '../../../runtime/protocol/signaling';
import { Store } from '../../../runtime/store';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';
import { SignalingClient, waitFor } from '../../support/wrtcPeer';
import { MediaServerProcess, TEST_MEDIA_KEYS } from './mediaServerProcess';

jest.setTimeout(30_000);

const SERVER_ID = 'media-sig-1';
const CAPACITY = 6;
let dynamo: TestDynamo;
let store: Store;
let server: MediaServerProcess;
const clients: SignalingClient[] = [];
let peerCounter = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  store = new Store({
    region: dynamo.region,
    tableName: dynamo.tableName,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
  server = await MediaServerProcess.start({
    dynamo,
    serverId: SERVER_ID,
    rtcMinPort: 21_100,
    rtcMaxPort: 21_139,
    numWorkers: 2,
    capacity: CAPACITY,
    // Long enough that a prompt load report can only come from crossing capacity, not from the timer.
    heartbeatIntervalMs: 60_000,
    roomCheckIntervalMs: 300,
    pingIntervalMs: 500,
    env: { JOIN_TIMEOUT_MS: '1500' },
  });
});

// Each test starts from an empty server, whatever the previous one left behind when it failed.
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await waitFor(async () => (await server.stats()).rooms === 0, 'every room to close after the test', 5_000);
});

afterAll(async () => {
  for (const client of clients) client.terminate();
  await server?.kill();
  store?.close();
  await dynamo?.close();
});

async function connect(roomId: string, query = ''): Promise<SignalingClient> {
  const client = await SignalingClient.connect(server.signalingUrl(roomId) + query);
  clients.push(client);
  return client;
}

/** A connected, joined client with a fresh peer id. */
async function joined(roomId: string): Promise<{ client: SignalingClient; peerId: string }> {
  const peerId = `peer-${++peerCounter}`;
  const client = await connect(roomId);
  await client.request('join', { token: await server.mediaToken(roomId, peerId) });
  return { client, peerId };
}

/** The worker index the server logged for the room's latest creation. */
async function roomWorker(roomId: string): Promise<number> {
  const line = await server.waitForLog((l) => l.msg === 'room created' && l.room === roomId);
  return line.worker as number;
}

async function leaveAll(...list: SignalingClient[]): Promise<void> {
  for (const client of list) if (client.isOpen) await client.request('leave', {});
}

describe('before join', () => {
  test('requests other than join and ping are refused with not_joined', async () => {
    const client = await connect('lobby');
    await expect(client.request('createWebRtcTransport', { direction: 'send' })).rejects.toMatchObject({
      code: 'not_joined',
    });
    await expect(client.request('listProducers', {})).rejects.toMatchObject({ code: 'not_joined' });
    expect(await client.request('ping', {})).toEqual({ serverTime: expect.any(Number) });
    expect(client.isOpen).toBe(true);
    client.close();
  });

  test('a connection that never joins is closed', async () => {
    const client = await connect('lobby');
    expect(await client.closed).toMatchObject({ code: SIGNALING_CLOSE.joinTimeout });
  });

  test.each([
    ['a garbage token', async () => 'not-a-jwt'],
    ['a token for another room', () => server.mediaToken('elsewhere', 'p-x')],
    ['a token for another media server', () => server.mediaToken('lobby', 'p-y', { server: 'media-other' })],
    ['an expired token', () => server.mediaToken('lobby', 'p-z', { ttlSeconds: -60 })],
  ])('join with %s is unauthorized and closes the socket', async (_what, token) => {
    const client = await connect('lobby');
    await expect(client.request('join', { token: await token() })).rejects.toMatchObject({
      code: 'unauthorized',
    });
    expect(await client.closed).toMatchObject({ code: SIGNALING_CLOSE.unauthorized });
  });

  test('a bad token in the URL is refused before the WebSocket upgrade', async () => {
    await expect(
      SignalingClient.connect(server.signalingUrl('lobby') + '?token=bogus'),
    ).rejects.toMatchObject({ statusCode: 401 });
    const good = await server.mediaToken('lobby', 'url-token-peer');
    const client = await connect('lobby', `?token=${good}`);
    await client.request('join', { token: good });
    await leaveAll(client);
  });

  test('a room id outside the allowed alphabet is refused', async () => {
    await expect(SignalingClient.connect(server.signalingUrl('bad%20room'))).rejects.toMatchObject({
      statusCode: 400,
    });
  });
});

describe('request validation', () => {
  test('malformed frames, unknown methods and bad payloads get errors that say what is wrong', async () => {
    const client = await connect('lobby');
    expect(await client.sendRaw('{not json')).toMatchObject({
      id: null,
      ok: false,
      error: { code: 'bad_request' },
    });
    expect(await client.requestFrame({ method: 'fly', data: {} })).toMatchObject({
      ok: false,
      error: { code: 'unknown_method', message: 'unknown method "fly"' },
    });
    const badDirection = await client.requestFrame({
      method: 'createWebRtcTransport',
      data: { direction: 'sideways' },
    });
    expect(badDirection).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(!badDirection.ok && badDirection.error.message).toMatch(/direction/);
    const extra = await client.requestFrame({ method: 'ping', data: { surprise: 1 } });
    expect(extra).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(client.isOpen).toBe(true);
    client.close();
  });

  test('joining twice on one connection is refused', async () => {
    const { client } = await joined('lobby');
    await expect(
      client.request('join', { token: await server.mediaToken('lobby', 'again') }),
    ).rejects.toMatchObject({
      code: 'already_joined',
    });
    await leaveAll(client);
  });

  test('unknown ids are not_found and the message names the id', async () => {
    const { client } = await joined('lobby');
    await expect(
      client.request('connectWebRtcTransport', { transportId: 'abc', dtlsParameters: {} }),
    ).rejects.toThrow('transport "abc" not found');
    await expect(client.request('resumeConsumer', { consumerId: 'c-1' })).rejects.toMatchObject({
      code: 'not_found',
      serverMessage: 'consumer "c-1" not found',
    });
    const { id } = await client.request('createWebRtcTransport', { direction: 'recv' });
    await expect(
      client.request('consume', { transportId: id, producerId: 'ghost', rtpCapabilities: {} }),
    ).rejects.toThrow('producer "ghost" not found');
    await expect(
      client.request('setProducerPaused', { producerId: 'p-9', paused: true }),
    ).rejects.toMatchObject({
      code: 'not_found',
    });
    await leaveAll(client);
  });

  test("a peer cannot touch another peer's transport", async () => {
    const alice = await joined('shared');
    const mallory = await joined('shared');
    const { id } = await alice.client.request('createWebRtcTransport', { direction: 'send' });
    await expect(mallory.client.request('restartIce', { transportId: id })).rejects.toMatchObject({
      code: 'forbidden',
      serverMessage: `transport "${id}" belongs to another peer`,
    });
    await expect(
      mallory.client.request('connectWebRtcTransport', {
        transportId: id,
        dtlsParameters: { role: 'client', fingerprints: [] },
      }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    // Alice's transport is untouched.
    expect((await alice.client.request('restartIce', { transportId: id })).iceParameters).toBeDefined();
    await leaveAll(alice.client, mallory.client);
  });

  test('mediasoup rejections of client structures come back as bad_request', async () => {
    const { client } = await joined('lobby');
    const send = await client.request('createWebRtcTransport', { direction: 'send' });
    const recv = await client.request('createWebRtcTransport', { direction: 'recv' });
    await expect(
      client.request('produce', {
        transportId: recv.id,
        kind: 'video',
        rtpParameters: { codecs: [], encodings: [] },
      }),
    ).rejects.toMatchObject({
      code: 'bad_request',
      serverMessage: expect.stringContaining('recv transport'),
    });
    await expect(
      client.request('produce', { transportId: send.id, kind: 'video', rtpParameters: { codecs: 'nope' } }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await leaveAll(client);
  });

  test('a frame above the size limit closes the connection', async () => {
    const client = await connect('lobby');
    void client
      .sendRaw(
        JSON.stringify({ id: 1, method: 'ping', data: { pad: 'x'.repeat(MAX_SIGNALING_FRAME_BYTES) } }),
      )
      .catch(() => {});
    expect((await client.closed).code).toBe(1009);
  });

  test('a client flooding requests is rate limited, then cut off', async () => {
    const client = await connect('lobby');
    const answers = Array.from({ length: 150 }, () =>
      client.requestFrame({ method: 'ping', data: {} }).catch(() => null),
    );
    await Promise.all(answers);
    expect(client.unmatchedErrors.some((f) => !f.ok && f.error.code === 'rate_limited')).toBe(true);
    expect(await client.closed).toMatchObject({ code: SIGNALING_CLOSE.policy });
  });
});

describe('rooms', () => {
  test('peers see each other come and go; rooms spread over workers; stats return to zero', async () => {
    const a = await joined('spread-1');
    const b = await joined('spread-1');
    await a.client.waitForNotification('peerJoined', (d) => d.peerId === b.peerId);
    const c = await joined('spread-2');
    const workers = await Promise.all(['spread-1', 'spread-2'].map((room) => roomWorker(room)));
    expect(new Set(workers).size).toBe(2);
    expect(await server.stats()).toMatchObject({ rooms: 2, peers: 3 });
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^media_peers\{[^}]*server="media-sig-1"[^}]*\} 3$/m);
    expect(metrics).toMatch(/^media_signaling_requests_total\{method="join",outcome="ok"[^}]*\} \d+$/m);

    b.client.close();
    await a.client.waitForNotification('peerLeft', (d) => d.peerId === b.peerId);
    await leaveAll(a.client, c.client);
    await waitFor(async () => (await server.stats()).rooms === 0, 'rooms to close');
  });

  test('a client that stops answering pings is dropped and its peer leaves the room', async () => {
    const watcher = await joined('silent');
    const peerId = `peer-${++peerCounter}`;
    const silent = new WebSocket(server.signalingUrl('silent'), { autoPong: false });
    await new Promise((resolve) => silent.once('open', resolve));
    silent.send(
      JSON.stringify({ id: 1, method: 'join', data: { token: await server.mediaToken('silent', peerId) } }),
    );
    await watcher.client.waitForNotification('peerJoined', (d) => d.peerId === peerId);
    const closed = new Promise<number>((resolve) => silent.once('close', resolve));
    await watcher.client.waitForNotification('peerLeft', (d) => d.peerId === peerId, 5_000);
    expect(await closed).toBe(1006);
    await leaveAll(watcher.client);
  });

  test('a room now assigned to another server sends its peers there and closes here', async () => {
    await store.rooms.place({ roomId: 'moving', serverId: SERVER_ID, region: dynamo.region });
    const a = await joined('moving');
    const b = await joined('moving');
    const placed = await store.rooms.get('moving');
    // Another region's LB took the room over (it thought this server dead, or won a placement race).
    await store.rooms.place({
      roomId: 'moving',
      serverId: 'media-elsewhere',
      region: 'us-east-1',
      expectedVersion: placed!.version,
    });
    for (const peer of [a, b]) {
      expect(await peer.client.waitForNotification('rejoin')).toEqual({
        reason: 'room_moved',
        serverId: SERVER_ID,
      });
      expect(await peer.client.closed).toMatchObject({ code: SIGNALING_CLOSE.rejoin });
    }
    await waitFor(async () => (await server.stats()).rooms === 0, 'the moved room to close', 5_000);
    // The room is not ours to release.
    expect(await store.rooms.get('moving')).toMatchObject({ serverId: 'media-elsewhere' });
  });

  test('a room whose item has not replicated here yet is left alone', async () => {
    const a = await joined('unplaced');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(a.client.isOpen).toBe(true);
    expect(a.client.notifications.some((n) => n.name === 'rejoin')).toBe(false);
    await leaveAll(a.client);
  });
});

describe('load', () => {
  test('crossing capacity is reported at once, not at the next heartbeat', async () => {
    const before = await store.servers.get(SERVER_ID);
    expect(before!.load).toBeLessThan(CAPACITY);
    const a = await joined('heavy');
    const b = await joined('heavy');
    for (let i = 0; i < 3; i++) {
      await a.client.request('createWebRtcTransport', { direction: 'send' });
      await b.client.request('createWebRtcTransport', { direction: 'recv' });
    }
    expect((await server.stats()).loadUnits).toBe(CAPACITY);
    await waitFor(
      async () => ((await store.servers.get(SERVER_ID))?.load ?? 0) >= CAPACITY,
      'the load report',
      5_000,
    );
    await leaveAll(a.client, b.client);
    await waitFor(
      async () => ((await store.servers.get(SERVER_ID))?.load ?? CAPACITY) < CAPACITY,
      'the load to drop',
      5_000,
    );
  });

  test('a peer cannot hold more transports than its limit', async () => {
    const { client } = await joined('limits');
    for (let i = 0; i < 4; i++) await client.request('createWebRtcTransport', { direction: 'recv' });
    await expect(client.request('createWebRtcTransport', { direction: 'recv' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    await leaveAll(client);
  });
});

describe('worker death', () => {
  test("a dead worker's rooms are told to rejoin, other rooms go on, and the worker comes back", async () => {
    const first = await joined('w-1');
    const second = await joined('w-2');
    const worker = await roomWorker('w-1');
    expect(await roomWorker('w-2')).not.toBe(worker);
    const victim = server.logs
      .filter((l) => l.msg === 'mediasoup worker started' && l.worker === worker)
      .at(-1)!;
    process.kill(victim.pid as number, 'SIGKILL');

    expect(await first.client.waitForNotification('rejoin')).toEqual({
      reason: 'worker_died',
      serverId: SERVER_ID,
    });
    expect(await first.client.closed).toMatchObject({ code: SIGNALING_CLOSE.rejoin });
    await server.waitForLog((l) => l.msg === 'mediasoup worker re-created' && l.worker === victim.worker);
    expect(second.client.isOpen).toBe(true);
    expect(await second.client.request('ping', {})).toBeDefined();

    // The re-created worker takes new rooms.
    const again = await joined('w-1');
    expect(await again.client.request('createWebRtcTransport', { direction: 'send' })).toHaveProperty('id');
    expect(await server.stats()).toMatchObject({ workers: 2, rooms: 2 });
    await leaveAll(second.client, again.client);
  });
});

test('a token signed with another key is refused', async () => {
  // Same key id, another secret: the kid does not make a token valid.
  const other = singleKeySet('another-secret-that-is-long-enough-0123456789', TEST_MEDIA_KEYS.current.kid);
  const { token } = await signMediaToken(other, {
    peerId: 'p',
    identity: 'i',
    room: 'lobby',
    server: SERVER_ID,
  });
  const client = await connect('lobby');
  await expect(client.request('join', { token })).rejects.toMatchObject({ code: 'unauthorized' });
  expect(TEST_MEDIA_KEYS.current.key.equals(other.current.key)).toBe(false);
});
