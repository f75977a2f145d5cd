/**
 * Real media through a real media server process: a mediasoup worker, a dynalite table, and two
 * libwebrtc peers (one producing synthetic VP8 video and Opus audio, one consuming) joined through the
 * signaling protocol. Then the server's ends: a drain on SIGTERM and a crash on SIGKILL.
 */
import { Store } from '../../../runtime/store';
import { SIGNALING_CLOSE } from '../../../runtime/protocol/signaling';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';
import { SignalingClient, TestPeer, waitFor, type ConsumedTrack } from '../../support/wrtcPeer';
import { MediaServerProcess } from './mediaServerProcess';

jest.setTimeout(60_000);

let dynamo: TestDynamo;
let store: Store;
const running: MediaServerProcess[] = [];
const peers: TestPeer[] = [];

beforeAll(async () => {
  dynamo = await startDynalite();
  store = new Store({
    region: dynamo.region,
    tableName: dynamo.tableName,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
});

afterAll(async () => {
  for (const peer of peers) peer.close();
  await Promise.all(running.map((p) => p.kill()));
  store?.close();
  await dynamo?.close();
});

async function startServer(serverId: string, rtcMinPort: number, extra: { drainTimeoutMs?: number } = {}) {
  const proc = await MediaServerProcess.start({
    dynamo,
    serverId,
    rtcMinPort,
    rtcMaxPort: rtcMinPort + 19,
    ...extra,
  });
  running.push(proc);
  return proc;
}

async function joinPeer(server: MediaServerProcess, roomId: string, peerId: string): Promise<TestPeer> {
  const peer = await TestPeer.join(server.signalingUrl(roomId), await server.mediaToken(roomId, peerId));
  peers.push(peer);
  return peer;
}

/** Waits until the consumer's decoded frame count has grown by `frames` from what it is now. */
async function framesGrow(
  viewer: TestPeer,
  consumed: ConsumedTrack,
  frames: number,
  what: string,
): Promise<void> {
  const start = (await viewer.consumerStats(consumed)).framesDecoded;
  await waitFor(async () => (await viewer.consumerStats(consumed)).framesDecoded >= start + frames, what);
}

describe('media server with real WebRTC peers', () => {
  let server: MediaServerProcess;

  beforeAll(async () => {
    server = await startServer('media-real-1', 21_000);
  });

  test('registers itself with its endpoint, public IP and capacity, and heartbeats', async () => {
    const first = await store.servers.get('media-real-1');
    expect(first).toMatchObject({
      region: dynamo.region,
      endpoint: `ws://127.0.0.1:${server.port}`,
      publicIp: '127.0.0.1',
      capacity: 100,
      status: 'active',
      load: 0,
      rooms: 0,
    });
    await waitFor(
      async () => ((await store.servers.get('media-real-1'))?.heartbeatAt ?? 0) > first!.heartbeatAt,
      'a heartbeat',
    );
    expect(server.logs.find((l) => l.msg === 'media engine')?.engine).toMatch(/^mediasoup 3\.\d+\.\d+/);
    const health = await fetch(`${server.baseUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'active',
      serverId: 'media-real-1',
      workers: 1,
      engine: expect.stringMatching(/^mediasoup/),
    });
  });

  test('a consumer receives the producer video and audio through the server; leaving cleans everything up', async () => {
    await store.rooms.place({ roomId: 'call-1', serverId: 'media-real-1', region: dynamo.region });
    const producer = await joinPeer(server, 'call-1', 'alice');
    const video = await producer.produceVideo();

    // A peer joining late lists what is already produced, and hears about what comes after.
    const viewer = await joinPeer(server, 'call-1', 'bob');
    const { producers } = await viewer.signaling.request('listProducers', {});
    // With who alice is and where: the region of this server, which she is joined to.
    const alice = { peerId: 'alice', identity: 'user-alice', region: dynamo.region };
    expect(producers).toEqual([{ producerId: video.producerId, ...alice, kind: 'video', paused: false }]);
    const audio = await producer.produceAudio();
    expect(await viewer.signaling.waitForNotification('newProducer')).toEqual({
      producerId: audio.producerId,
      ...alice,
      kind: 'audio',
      paused: false,
    });

    const videoIn = await viewer.consume(video.producerId);
    const audioIn = await viewer.consume(audio.producerId);

    await waitFor(
      async () => (await viewer.consumerStats(videoIn)).framesDecoded >= 15,
      'decoded video frames',
    );
    await waitFor(async () => (await viewer.consumerStats(audioIn)).packetsReceived >= 50, 'audio packets');
    const videoStats = await viewer.consumerStats(videoIn);
    expect(videoStats.bytesReceived).toBeGreaterThan(0);
    expect(videoIn.frameCounter!.frames).toBeGreaterThan(0);
    expect([videoIn.frameCounter!.lastWidth, videoIn.frameCounter!.lastHeight]).toEqual([320, 240]);
    expect((await viewer.consumerStats(audioIn)).bytesReceived).toBeGreaterThan(0);

    expect(await server.stats()).toMatchObject({
      rooms: 1,
      peers: 2,
      transports: 2,
      producers: 2,
      consumers: 2,
      loadUnits: 4,
    });
    expect(producer.signaling.notifications.some((n) => n.name === 'peerJoined')).toBe(true);
    await waitFor(async () => {
      const reported = await store.servers.get('media-real-1');
      return (reported?.load ?? 0) >= 4 && reported?.rooms === 1;
    }, 'the load and room count in the heartbeat');

    await producer.signaling.request('setProducerPaused', { producerId: audio.producerId, paused: true });
    expect(await viewer.signaling.waitForNotification('producerPaused')).toEqual({
      producerId: audio.producerId,
      paused: true,
    });
    await producer.signaling.request('setProducerPaused', { producerId: audio.producerId, paused: false });
    await viewer.signaling.waitForNotification('producerPaused', (d) => !d.paused);

    // The producer leaving closes the viewer's consumers and tells it so.
    await producer.leave();
    await viewer.signaling.waitForNotification('consumerClosed', (d) => d.producerId === video.producerId);
    await viewer.signaling.waitForNotification('peerLeft', (d) => d.peerId === 'alice');
    expect(await server.stats()).toMatchObject({
      rooms: 1,
      peers: 1,
      transports: 1,
      producers: 0,
      consumers: 0,
    });

    await viewer.leave();
    expect(await viewer.signaling.closed).toMatchObject({ code: SIGNALING_CLOSE.normal });
    await waitFor(async () => (await server.stats()).rooms === 0, 'the empty room to close');
    expect(await server.stats()).toMatchObject({
      rooms: 0,
      peers: 0,
      transports: 0,
      producers: 0,
      consumers: 0,
      loadUnits: 0,
    });
    await waitFor(async () => (await store.rooms.get('call-1')) === null, 'the room item to be released');
  });

  test('a media token cannot join again after its peer left', async () => {
    const token = await server.mediaToken('call-2', 'carol');
    const first = await TestPeer.join(server.signalingUrl('call-2'), token);
    await first.leave();
    const replay = await SignalingClient.connect(server.signalingUrl('call-2'));
    await expect(replay.request('join', { token })).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await replay.closed).toMatchObject({ code: SIGNALING_CLOSE.unauthorized });
  });

  test('SIGTERM drains: new joins are refused, a call in progress keeps its media until it ends, then the server leaves the table', async () => {
    await store.rooms.place({ roomId: 'call-3', serverId: 'media-real-1', region: dynamo.region });
    const producer = await joinPeer(server, 'call-3', 'dave');
    const video = await producer.produceVideo();
    const viewer = await joinPeer(server, 'call-3', 'erin');
    const videoIn = await viewer.consume(video.producerId);
    await framesGrow(viewer, videoIn, 10, 'video before the drain');

    server.signal('SIGTERM');
    await server.waitForLog((l) => l.msg === 'draining: no new peers; existing calls continue');
    await waitFor(
      async () => (await store.servers.get('media-real-1'))?.status === 'draining',
      'the draining status in the table',
    );

    const late = await SignalingClient.connect(server.signalingUrl('call-3'));
    await expect(
      late.request('join', { token: await server.mediaToken('call-3', 'frank') }),
    ).rejects.toMatchObject({
      code: 'server_draining',
    });
    expect(await late.closed).toMatchObject({ code: SIGNALING_CLOSE.rejoin });

    await framesGrow(viewer, videoIn, 15, 'video during the drain');
    expect(server.child.exitCode).toBeNull();

    await viewer.leave();
    await producer.leave();
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(await store.servers.get('media-real-1')).toBeNull();
    expect(await store.rooms.get('call-3')).toBeNull();
  });
});

describe('drain timeout', () => {
  test('peers still in a call when the drain times out are told to rejoin elsewhere; the server exits cleanly', async () => {
    const server = await startServer('media-real-3', 21_080, { drainTimeoutMs: 1_000 });
    const stayer = await joinPeer(server, 'call-5', 'hank');
    await stayer.produceVideo();
    server.signal('SIGTERM');
    expect(await stayer.signaling.waitForNotification('rejoin')).toEqual({
      reason: 'server_draining',
      serverId: 'media-real-3',
    });
    expect(await stayer.signaling.closed).toMatchObject({ code: SIGNALING_CLOSE.rejoin });
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(await store.servers.get('media-real-3')).toBeNull();
  });
});

describe('media server crash', () => {
  test('a peer sees the socket close within seconds of a SIGKILL', async () => {
    const server = await startServer('media-real-2', 21_040);
    const peer = await joinPeer(server, 'call-4', 'gina');
    await peer.produceVideo();
    server.signal('SIGKILL');
    const closed = await Promise.race([
      peer.signaling.closed,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5_000)),
    ]);
    expect(closed).not.toBe('timeout');
    expect(await server.exited).toMatchObject({ signal: 'SIGKILL' });
  });
});
