/**
 * What one participant can hold on a media server, tried as an attacker holding one valid join token
 * would (issue #15): its JSON requests alone must not fill the server, a second join of its identity
 * replaces the first instead of adding a peer, a room holds a bounded number of peers, and one media
 * token opens one signaling session. One real media server in this process (real mediasoup worker,
 * real sockets, real dynalite) on its own loopback address, so its RTC ports collide with no other
 * suite's.
 */
import { DEFAULT_PEER_LIMITS } from '../../runtime/media/config';
import { SIGNALING_CLOSE } from '../../runtime/protocol/signaling';
import { TestPeer, waitFor } from '../support/wrtcPeer';
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(60_000);

const ADDRESS = '127.0.115.1';
/** Small enough to fill in a test; the production default (MAX_ROOM_PEERS) is checked in env.test.ts. */
const ROOM_PEER_CAP = 4;
const CAPACITY = 500;
const DTLS = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF' }] };
const OPUS = { mimeType: 'audio/opus', payloadType: 111, clockRate: 48_000, channels: 2 };

let media: InProcessMediaServer;
let requestId = 1;
let ssrc = 10_000;
const open: RawSignaling[] = [];
const peers: TestPeer[] = [];

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'bounds-media',
    address: ADDRESS,
    rtcMinPort: 40_000,
    rtcMaxPort: 40_099,
    // The attacks below send a few hundred requests; the rate limit is another suite's subject.
    signaling: { messagesPerSecond: 2_000, messageBurst: 2_000 },
    config: { capacity: CAPACITY, room: { maxPeers: ROOM_PEER_CAP } },
  });
});

afterEach(async () => {
  for (const conn of open.splice(0)) conn.close();
  for (const peer of peers.splice(0)) peer.close();
  await waitFor(() => media.counts().rooms === 0, 'every room to close after the test', 5_000, 20);
});

afterAll(async () => {
  await media?.close();
});

async function connect(room: string, urlToken?: string): Promise<RawSignaling> {
  const conn = await RawSignaling.open(media.signalingUrl(room, urlToken));
  open.push(conn);
  return conn;
}

async function joined(room: string, peerId: string, identity?: string): Promise<RawSignaling> {
  const conn = await connect(room);
  await conn.request(requestId++, 'join', { token: await media.mediaToken(room, peerId, { identity }) });
  return conn;
}

/** A request that must be refused; resolves with the error (fails on a success or a close). */
async function refusal(
  conn: RawSignaling,
  method: string,
  data: unknown,
): Promise<{ code: string; message: string }> {
  const out = await conn.exchange(JSON.stringify({ id: requestId++, method, data }));
  if ('closed' in out) throw new Error(`${method}: closed (${out.closed.code} ${out.closed.reason})`);
  if (out.response.ok) throw new Error(`${method} succeeded: ${JSON.stringify(out.response.data)}`);
  return out.response.error;
}

/** Sends one request; resolves true when it succeeded, false when it was refused. */
async function tried(conn: RawSignaling, method: string, data: unknown): Promise<unknown> {
  const out = await conn.exchange(JSON.stringify({ id: requestId++, method, data }));
  if ('closed' in out) throw new Error(`${method}: closed (${out.closed.code} ${out.closed.reason})`);
  return out.response.ok ? (out.response.data ?? {}) : undefined;
}

async function transport(conn: RawSignaling, direction: 'send' | 'recv'): Promise<string> {
  const { id } = await conn.request<{ id: string }>(requestId++, 'createWebRtcTransport', { direction });
  await conn.request(requestId++, 'connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS });
  return id;
}

function audio(mid: number): Record<string, unknown> {
  return { mid: String(mid), codecs: [OPUS], encodings: [{ ssrc: ssrc++ }] };
}

async function produce(conn: RawSignaling, sendTransport: string, mid = 0): Promise<string> {
  return (
    await conn.request<{ producerId: string }>(requestId++, 'produce', {
      transportId: sendTransport,
      kind: 'audio',
      rtpParameters: audio(mid),
    })
  ).producerId;
}

async function routerCaps(conn: RawSignaling): Promise<unknown> {
  return (await conn.request<{ rtpCapabilities: unknown }>(requestId++, 'getRouterRtpCapabilities', {}))
    .rtpCapabilities;
}

/**
 * Everything a peer can claim with JSON alone, as an attacker would try it: transports until refused,
 * producers until refused, then every producer of the room (its own included) consumed again and again
 * on every recv transport until nothing more is accepted.
 */
async function claimEverything(conn: RawSignaling): Promise<void> {
  const caps = await routerCaps(conn);
  const transports: Array<{ id: string; direction: 'send' | 'recv' }> = [];
  for (let i = 0; i < 10; i++) {
    const direction = i % 2 === 0 ? 'send' : 'recv';
    const created = (await tried(conn, 'createWebRtcTransport', { direction })) as { id: string } | undefined;
    if (!created) break;
    transports.push({ id: created.id, direction });
  }
  const send = transports.find((t) => t.direction === 'send')!.id;
  const own: string[] = [];
  for (let mid = 0; mid < 12; mid++) {
    const produced = (await tried(conn, 'produce', {
      transportId: send,
      kind: 'audio',
      rtpParameters: audio(mid),
    })) as { producerId: string } | undefined;
    if (!produced) break;
    own.push(produced.producerId);
  }
  const recvs = transports.filter((t) => t.direction === 'recv').map((t) => t.id);
  const { producers } = await conn.request<{ producers: Array<{ producerId: string }> }>(
    requestId++,
    'listProducers',
    {},
  );
  const targets = [...producers.map((p) => p.producerId), ...own];
  for (let round = 0; round < 300; round++) {
    let accepted = 0;
    for (const producerId of targets) {
      for (const transportId of recvs) {
        if (await tried(conn, 'consume', { transportId, producerId, rtpCapabilities: caps })) accepted++;
      }
    }
    if (accepted === 0) break;
  }
}

/** How a socket closed, or 'still open' after `ms`: a test fails instead of hanging on a missing close. */
function closeOf(conn: RawSignaling, ms = 5_000): Promise<{ code: number; reason: string } | 'still open'> {
  return Promise.race([
    conn.closed,
    new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), ms)),
  ]);
}

/** The socket once the server lets it upgrade, or undefined while it refuses. */
async function tryConnect(room: string, urlToken: string): Promise<RawSignaling | undefined> {
  try {
    return await connect(room, urlToken);
  } catch {
    return undefined;
  }
}

/** The HTTP status an upgrade with `urlToken` gets: 101 when the socket opened, else the refusal's. */
async function upgradeStatus(room: string, urlToken: string): Promise<number> {
  try {
    await connect(room, urlToken);
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? 0;
  }
}

describe('consumers: one per (peer, producer), never of its own producer', () => {
  test("consuming one's own producer is refused and creates nothing", async () => {
    const mallory = await joined('self-consume', 'mallory-1');
    const send = await transport(mallory, 'send');
    const recv = await transport(mallory, 'recv');
    const producerId = await produce(mallory, send);
    const before = media.counts();
    expect(
      await refusal(mallory, 'consume', {
        transportId: recv,
        producerId,
        rtpCapabilities: await routerCaps(mallory),
      }),
    ).toEqual({
      code: 'bad_request',
      message: `producer "${producerId}" is this peer's own; a peer does not consume itself`,
    });
    expect(media.counts()).toEqual(before);
  });

  test('consuming a producer a second time is refused and names the consumer the peer has', async () => {
    const alice = await joined('double-consume', 'alice-1');
    const producerId = await produce(alice, await transport(alice, 'send'));
    const mallory = await joined('double-consume', 'mallory-2');
    const recv = await transport(mallory, 'recv');
    const caps = await routerCaps(mallory);
    const { consumerId } = await mallory.request<{ consumerId: string }>(requestId++, 'consume', {
      transportId: recv,
      producerId,
      rtpCapabilities: caps,
    });
    const otherRecv = await transport(mallory, 'recv');
    for (const transportId of [recv, otherRecv]) {
      expect(await refusal(mallory, 'consume', { transportId, producerId, rtpCapabilities: caps })).toEqual({
        code: 'bad_request',
        message: `producer "${producerId}" is already consumed by this peer (consumer "${consumerId}")`,
      });
    }
    expect(media.counts()).toMatchObject({ consumers: 1 });
  });
});

describe('what one join token can claim without sending media', () => {
  test(`an idle peer's JSON claims at most ${DEFAULT_PEER_LIMITS.maxTransports} load units, and a second join of its identity does not add more`, async () => {
    const room = 'json-claims';
    // An honest peer with two silent producers for the attacker to consume.
    const alice = await joined(room, 'alice-2');
    const aliceSend = await transport(alice, 'send');
    await produce(alice, aliceSend, 0);
    await produce(alice, aliceSend, 1);
    const baseline = media.counts().loadUnits;

    const first = await joined(room, 'mallory-3a', 'mallory');
    await claimEverything(first);
    expect(media.counts().loadUnits - baseline).toBeLessThanOrEqual(DEFAULT_PEER_LIMITS.maxTransports);

    // The same join token again (the LB mints a new media token per join): the second session
    // replaces the first, so the attacker still holds one peer's worth.
    const second = await joined(room, 'mallory-3b', 'mallory');
    expect(await closeOf(first)).toMatchObject({ code: SIGNALING_CLOSE.replaced });
    await claimEverything(second);
    const afterSecond = media.counts();
    expect(afterSecond.loadUnits - baseline).toBeLessThanOrEqual(DEFAULT_PEER_LIMITS.maxTransports);
    expect(afterSecond).toMatchObject({ peers: 2 });
    expect(afterSecond.loadUnits).toBeLessThan(CAPACITY / 10);
  });

  test('a consumer counts once its producer has carried media; consumers of silent producers do not', async () => {
    const room = 'media-counts';
    const speaker = await TestPeer.join(media.signalingUrl(room), await media.mediaToken(room, 'speaker'));
    peers.push(speaker);
    const viewer = await TestPeer.join(media.signalingUrl(room), await media.mediaToken(room, 'viewer'));
    peers.push(viewer);
    const silent = await joined(room, 'silent-1');
    const silentProducer = await produce(silent, await transport(silent, 'send'));

    // The viewer consumes right away, before or while the first packets arrive: the count follows.
    const video = await speaker.produceVideo();
    const consumed = await viewer.consume(video.producerId);
    await viewer.consume(silentProducer);
    // speaker send + viewer recv + silent send, and the one consumer whose producer carries media.
    await waitFor(() => media.counts().loadUnits === 4, 'the media-carrying consumer to count', 10_000, 50);
    await waitFor(
      async () => (await viewer.consumerStats(consumed)).framesDecoded > 5,
      'decoded frames at the viewer',
    );
    expect(media.counts()).toMatchObject({ transports: 3, consumers: 2, loadUnits: 4 });
  });
});

describe('room and identity caps', () => {
  test(`a join beyond the room's ${ROOM_PEER_CAP} peers is refused with room_full and changes nothing`, async () => {
    const room = 'full-room';
    const members: RawSignaling[] = [];
    for (let i = 0; i < ROOM_PEER_CAP; i++) members.push(await joined(room, `member-${i}`));
    const notificationsBefore = members.map((m) => m.notifications.length);

    const late = await connect(room);
    const out = await late.exchange(
      JSON.stringify({
        id: requestId++,
        method: 'join',
        data: { token: await media.mediaToken(room, 'late') },
      }),
    );
    if ('closed' in out) throw new Error(`closed without an answer (${out.closed.code})`);
    expect(out.response).toMatchObject({
      ok: false,
      error: {
        code: 'room_full',
        message: `room "${room}" is full (${ROOM_PEER_CAP} peers); join again later`,
      },
    });
    expect(await closeOf(late)).toMatchObject({ code: SIGNALING_CLOSE.roomFull });
    expect(media.counts()).toMatchObject({ rooms: 1, peers: ROOM_PEER_CAP });
    expect(members.map((m) => m.notifications.length)).toEqual(notificationsBefore);
  });

  test("a full room still takes a member's second session, which replaces its first", async () => {
    const room = 'full-rejoin';
    const members: RawSignaling[] = [];
    for (let i = 0; i < ROOM_PEER_CAP; i++) {
      members.push(await joined(room, `regular-${i}`, `regular-${i}`));
    }
    const again = await joined(room, 'regular-0-again', 'regular-0');
    expect(await closeOf(members[0]!)).toMatchObject({ code: SIGNALING_CLOSE.replaced });
    expect(media.counts()).toMatchObject({ peers: ROOM_PEER_CAP });
    expect(await again.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
  });

  test('a second join of an identity replaces the first: it is closed as replaced, its objects go, the others see it leave', async () => {
    const room = 'replace';
    const bob = await joined(room, 'bob-1', 'bob');
    const first = await joined(room, 'alice-first', 'alice');
    const firstProducer = await produce(first, await transport(first, 'send'));
    await transport(first, 'recv');
    bob.notifications.length = 0;

    const second = await joined(room, 'alice-second', 'alice');
    expect(await closeOf(first)).toEqual({ code: SIGNALING_CLOSE.replaced, reason: 'replaced' });
    // Replaced means "another session of yours took over", not "rejoin": no rejoin notice is sent.
    expect(first.notifications.map((n) => n.notification)).not.toContain('rejoin');
    await waitFor(() => bob.notifications.length >= 3, "bob's notifications", 5_000, 20);
    expect(bob.notifications).toEqual([
      {
        notification: 'producerClosed',
        data: { producerId: firstProducer, peerId: 'alice-first', reason: 'closed' },
      },
      { notification: 'peerLeft', data: { peerId: 'alice-first', reason: 'left' } },
      {
        notification: 'peerJoined',
        data: { peerId: 'alice-second', identity: 'alice', region: media.dynamo.region },
      },
    ]);
    expect(media.counts()).toMatchObject({ rooms: 1, peers: 2, transports: 0, producers: 0 });
    expect(await second.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
  });

  test('replacing the only peer of a room keeps the room', async () => {
    const room = 'replace-alone';
    const first = await joined(room, 'solo-first', 'solo');
    const router = media.running.server.rooms.get(room)!.router.id;
    const second = await joined(room, 'solo-second', 'solo');
    expect(await closeOf(first)).toMatchObject({ code: SIGNALING_CLOSE.replaced });
    expect(media.running.server.rooms.get(room)?.router.id).toBe(router);
    expect(media.counts()).toMatchObject({ rooms: 1, peers: 1 });
    await transport(second, 'send');
  });
});

describe('a media token opens one signaling session', () => {
  test('a URL token whose peer is connected is refused before the upgrade', async () => {
    const token = await media.mediaToken('one-session', 'url-peer-1');
    expect(await upgradeStatus('one-session', token)).toBe(101);
    expect(await upgradeStatus('one-session', token)).toBe(409);
  });

  test('a URL token whose peer has joined, or joined and left, is refused before the upgrade', async () => {
    const token = await media.mediaToken('one-session', 'url-peer-2');
    const conn = await connect('one-session', token);
    await conn.request(requestId++, 'join', { token });
    conn.socket.terminate();
    await conn.closed;
    expect(await upgradeStatus('one-session', token)).toBe(409);
    expect(media.counts()).toMatchObject({ peers: 0 });
  });

  test('two upgrades with one token at once: exactly one is let in', async () => {
    const token = await media.mediaToken('one-session', 'url-peer-3');
    const statuses = await Promise.all([
      upgradeStatus('one-session', token),
      upgradeStatus('one-session', token),
    ]);
    expect(statuses.sort()).toEqual([101, 409]);
  });

  test('a join with a token whose peer is connected on another socket is refused; the holder then joins', async () => {
    const token = await media.mediaToken('one-session', 'url-peer-4');
    const holder = await connect('one-session', token);
    const thief = await connect('one-session');
    expect(await refusal(thief, 'join', { token })).toEqual({
      code: 'unauthorized',
      message: 'media token for peer "url-peer-4" is in use by another connection',
    });
    expect(await closeOf(thief)).toMatchObject({ code: SIGNALING_CLOSE.unauthorized });
    await holder.request(requestId++, 'join', { token });
    expect(media.counts()).toMatchObject({ peers: 1 });
  });

  test("a join with another peer's token than the URL's is refused and leaves that token usable", async () => {
    const urlToken = await media.mediaToken('one-session', 'url-peer-5');
    const other = await media.mediaToken('one-session', 'url-peer-6');
    const conn = await connect('one-session', urlToken);
    expect(await refusal(conn, 'join', { token: other })).toEqual({
      code: 'unauthorized',
      message: 'this connection was opened for peer "url-peer-5"; its join token is for peer "url-peer-6"',
    });
    await (await connect('one-session', other)).request(requestId++, 'join', { token: other });
    expect(media.counts()).toMatchObject({ peers: 1 });
  });

  test('a connection that closes before joining frees its token for the next socket', async () => {
    const token = await media.mediaToken('one-session', 'url-peer-7');
    const early = await connect('one-session', token);
    early.socket.terminate();
    await early.closed;
    let next: RawSignaling | undefined;
    await waitFor(
      async () => (next = await tryConnect('one-session', token)) !== undefined,
      'the token to be free again',
      5_000,
      50,
    );
    await next!.request(requestId++, 'join', { token });
    expect(media.counts()).toMatchObject({ peers: 1 });
  });
});
