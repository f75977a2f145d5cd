/**
 * A peer cannot act on another peer's transports, producers or consumers, nor see or touch another
 * room's, on one real media server with two rooms. test/runtime/media/signaling.test.ts covers
 * restartIce and connect on another peer's transport; this file covers every other request that names
 * an object, and checks that the victim's objects are untouched afterwards and that nothing leaks
 * across rooms (a foreign room's id is answered exactly like an id that never existed).
 */
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(30_000);

const ROOM = 'shared-room';
const OTHER_ROOM = 'other-room';
const DTLS = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF' }] };

interface Equipped {
  readonly conn: RawSignaling;
  readonly peerId: string;
  readonly send: string;
  readonly recv: string;
  readonly producer: string;
  consumer: string;
}

let media: InProcessMediaServer;
let requestId = 1;
let alice: Equipped;
let mallory: Equipped;
let sam: Equipped;
/** In sam's room before sam, so sam holds a consumer (of sara's producer; a peer never consumes itself). */
let sara: Equipped;
let routerCaps: unknown;

async function equip(room: string, peerId: string, ssrc: number): Promise<Equipped> {
  const conn = await RawSignaling.open(media.signalingUrl(room));
  routerCaps = (
    await conn.request<{ routerRtpCapabilities: unknown }>(requestId++, 'join', {
      token: await media.mediaToken(room, peerId),
    })
  ).routerRtpCapabilities;
  const transport = async (direction: string) => {
    const { id } = await conn.request<{ id: string }>(requestId++, 'createWebRtcTransport', { direction });
    await conn.request(requestId++, 'connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS });
    return id;
  };
  const send = await transport('send');
  const recv = await transport('recv');
  const { producerId } = await conn.request<{ producerId: string }>(requestId++, 'produce', {
    transportId: send,
    kind: 'audio',
    rtpParameters: {
      mid: '0',
      codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48_000, channels: 2 }],
      encodings: [{ ssrc }],
    },
  });
  return { conn, peerId, send, recv, producer: producerId, consumer: '' };
}

async function consume(peer: Equipped, producerId: string): Promise<void> {
  peer.consumer = (
    await peer.conn.request<{ consumerId: string }>(requestId++, 'consume', {
      transportId: peer.recv,
      producerId,
      rtpCapabilities: routerCaps,
    })
  ).consumerId;
}

async function refused(
  peer: Equipped,
  method: string,
  data: unknown,
): Promise<{ code: string; message: string }> {
  const out = await peer.conn.exchange(JSON.stringify({ id: requestId++, method, data }));
  if ('closed' in out) throw new Error(`${method}: closed (${out.closed.code})`);
  if (out.response.ok) throw new Error(`${method} succeeded: ${JSON.stringify(out.response.data)}`);
  return out.response.error;
}

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'isolation-media',
    rtcMinPort: 22_200,
    rtcMaxPort: 22_239,
  });
  alice = await equip(ROOM, 'alice', 1111);
  mallory = await equip(ROOM, 'mallory', 2222);
  sara = await equip(OTHER_ROOM, 'sara', 4444);
  sam = await equip(OTHER_ROOM, 'sam', 3333);
  await consume(alice, mallory.producer);
  await consume(mallory, alice.producer);
  await consume(sam, sara.producer);
});

afterAll(async () => {
  for (const peer of [alice, mallory, sam, sara]) peer?.conn.close();
  await media?.close();
});

describe("another peer's objects in the same room are forbidden", () => {
  test.each([
    [
      'produce on its send transport',
      () => [
        'produce',
        { transportId: alice.send, kind: 'audio', rtpParameters: { mid: '5', codecs: [], encodings: [] } },
      ],
      () => `transport "${alice.send}"`,
    ],
    [
      'consume on its recv transport',
      () => ['consume', { transportId: alice.recv, producerId: alice.producer, rtpCapabilities: routerCaps }],
      () => `transport "${alice.recv}"`,
    ],
    [
      'pause its producer',
      () => ['setProducerPaused', { producerId: alice.producer, paused: true }],
      () => `producer "${alice.producer}"`,
    ],
    [
      'close its producer',
      () => ['closeProducer', { producerId: alice.producer }],
      () => `producer "${alice.producer}"`,
    ],
    [
      'resume its consumer',
      () => ['resumeConsumer', { consumerId: alice.consumer }],
      () => `consumer "${alice.consumer}"`,
    ],
  ] as Array<[string, () => [string, unknown], () => string]>)('%s', async (_what, request, object) => {
    const [method, data] = request();
    expect(await refused(mallory, method, data)).toEqual({
      code: 'forbidden',
      message: `${object()} belongs to another peer`,
    });
  });

  test("the victim's producer is still there, unpaused, and nobody was told otherwise", async () => {
    const { producers } = await sam.conn.request<{ producers: Array<{ peerId: string }> }>(
      requestId++,
      'listProducers',
      {},
    );
    expect(producers.map((p) => p.peerId)).toEqual(['sara']);
    const seen = await mallory.conn.request<{ producers: Array<{ producerId: string; paused: boolean }> }>(
      requestId++,
      'listProducers',
      {},
    );
    expect(seen.producers).toEqual([expect.objectContaining({ producerId: alice.producer, paused: false })]);
    const names = alice.conn.notifications.concat(mallory.conn.notifications).map((n) => n.notification);
    expect(names).not.toContain('producerPaused');
    expect(names).not.toContain('producerClosed');
    expect(media.counts()).toMatchObject({ rooms: 2, peers: 4, transports: 8, producers: 4, consumers: 3 });
  });
});

describe("another room's objects do not exist for a peer", () => {
  test.each([
    ['restartIce', () => ({ transportId: sam.send }), () => `transport "${sam.send}" not found`],
    [
      'connectWebRtcTransport',
      () => ({ transportId: sam.recv, dtlsParameters: DTLS }),
      () => `transport "${sam.recv}" not found`,
    ],
    [
      'produce',
      () => ({ transportId: sam.send, kind: 'audio', rtpParameters: { codecs: [] } }),
      () => `transport "${sam.send}" not found`,
    ],
    [
      'consume',
      () => ({ transportId: mallory.recv, producerId: sam.producer, rtpCapabilities: routerCaps }),
      () => `producer "${sam.producer}" not found`,
    ],
    [
      'setProducerPaused',
      () => ({ producerId: sam.producer, paused: true }),
      () => `producer "${sam.producer}" not found`,
    ],
    ['closeProducer', () => ({ producerId: sam.producer }), () => `producer "${sam.producer}" not found`],
    ['resumeConsumer', () => ({ consumerId: sam.consumer }), () => `consumer "${sam.consumer}" not found`],
  ] as Array<[string, () => Record<string, unknown>, () => string]>)(
    "%s with another room's id is not_found, word for word like an id that never existed",
    async (method, data, message) => {
      expect(await refused(mallory, method, data())).toEqual({ code: 'not_found', message: message() });
      // The same request with a made-up id of the same shape gets the same answer, so an attacker
      // cannot probe which ids exist in other rooms.
      const made = Object.fromEntries(
        Object.entries(data()).map(([k, v]) => [
          k,
          Object.values(sam).includes(v) ? '00000000-0000-4000-8000-000000000000' : v,
        ]),
      );
      expect(await refused(mallory, method, made)).toEqual({
        code: 'not_found',
        message: message().replace(/"[^"]+"/, '"00000000-0000-4000-8000-000000000000"'),
      });
    },
  );

  test('a peer sees only its own room: listProducers and notifications never cross', async () => {
    const { producers } = await mallory.conn.request<{ producers: Array<{ producerId: string }> }>(
      requestId++,
      'listProducers',
      {},
    );
    expect(producers.map((p) => p.producerId)).not.toContain(sam.producer);
    expect(sam.conn.notifications.map((n) => n.notification)).toEqual([]);
    expect(media.counts()).toMatchObject({ rooms: 2, peers: 4, transports: 8, producers: 4, consumers: 3 });
  });
});
