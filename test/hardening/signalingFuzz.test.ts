/**
 * Property-based fuzzing of every signaling message type against a real media server (real mediasoup
 * worker, real WebSocket, started in this process so its counts and logs are checked after each case).
 *
 * The fuzzing peer ("mallory") is joined in a room with another peer ("alice"); a third peer ("sam")
 * sits in another room of the same server, with "sara" whose producer it consumes. Every case is one frame: its answer must come within a
 * bound, be a protocol error with a client-side code (or a success of a harmless request on mallory's
 * own objects), leave mallory's connection open, change no object count on the server and log no error.
 *
 * Named examples of each guard live in test/runtime/media/signaling.test.ts; cross-peer and cross-room
 * cases with their codes in peerIsolation.test.ts.
 */
import fc from 'fast-check';
import {
  MAX_SIGNALING_FRAME_BYTES,
  METHODS,
  type Method,
  type ResponseFrame,
} from '../../runtime/protocol/signaling';
import {
  CASE_TIMEOUT_MS,
  checkProperty,
  deepJson,
  hostileJson,
  hostileString,
  invalidUtf8,
  mutatedObject,
  pointMutated,
  PROTOTYPE_KEYS,
  within,
} from './hostile';
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(180_000);

const ROOM = 'fuzz-room';
const OTHER_ROOM = 'other-room';
/** Codes that say "you sent something wrong"; `internal` (our fault) never qualifies. */
const CLIENT_CODES = new Set([
  'bad_request',
  'unknown_method',
  'not_joined',
  'already_joined',
  'not_found',
  'forbidden',
]);

let media: InProcessMediaServer;
let mallory: RawSignaling;
let nextId = 1;

/** Ids of every object in the fixture, by who holds them. */
const ids = {
  own: { send: '', recv: '', producer: '', consumer: '' },
  alice: { send: '', recv: '', producer: '', consumer: '' },
  sam: { send: '', recv: '', producer: '', consumer: '' },
};
/** Kept open for the whole file: their peers own the objects above. */
const bystanders: RawSignaling[] = [];
let routerCaps: unknown;

const DTLS = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF' }] };
const rtp = (mid: string, ssrc: number) => ({
  mid,
  codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48_000, channels: 2 }],
  encodings: [{ ssrc }],
});

async function joinedPeer(room: string, peerId: string): Promise<RawSignaling> {
  const peer = await RawSignaling.open(media.signalingUrl(room));
  const joined = await peer.request<{ routerRtpCapabilities: unknown }>(nextId++, 'join', {
    token: await media.mediaToken(room, peerId),
  });
  routerCaps = joined.routerRtpCapabilities;
  return peer;
}

/** Send + recv transports (both connected), one audio producer; returns the ids. */
async function equip(peer: RawSignaling, into: (typeof ids)['own'], ssrc: number): Promise<void> {
  for (const direction of ['send', 'recv'] as const) {
    const { id } = await peer.request<{ id: string }>(nextId++, 'createWebRtcTransport', { direction });
    await peer.request(nextId++, 'connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS });
    into[direction] = id;
  }
  into.producer = (
    await peer.request<{ producerId: string }>(nextId++, 'produce', {
      transportId: into.send,
      kind: 'audio',
      rtpParameters: rtp('0', ssrc),
    })
  ).producerId;
}

async function consume(peer: RawSignaling, into: (typeof ids)['own'], producerId: string): Promise<void> {
  into.consumer = (
    await peer.request<{ consumerId: string }>(nextId++, 'consume', {
      transportId: into.recv,
      producerId,
      rtpCapabilities: routerCaps,
    })
  ).consumerId;
}

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'fuzz-media',
    rtcMinPort: 22_100,
    rtcMaxPort: 22_139,
    // The rate limit is the subject of limits.test.ts; here it would answer most cases rate_limited.
    signaling: { messagesPerSecond: 1e9, messageBurst: 1e9, pingIntervalMs: 60_000, joinTimeoutMs: 60_000 },
  });
  const alice = await joinedPeer(ROOM, 'alice');
  mallory = await joinedPeer(ROOM, 'mallory');
  const sara = await joinedPeer(OTHER_ROOM, 'sara');
  const sam = await joinedPeer(OTHER_ROOM, 'sam');
  bystanders.push(alice, sam, sara);
  await equip(alice, ids.alice, 2222);
  await equip(mallory, ids.own, 1111);
  await equip(sam, ids.sam, 3333);
  const saraIds = { send: '', recv: '', producer: '', consumer: '' };
  await equip(sara, saraIds, 4444);
  await consume(mallory, ids.own, ids.alice.producer);
  await consume(alice, ids.alice, ids.own.producer);
  await consume(sam, ids.sam, saraIds.producer);
});

afterAll(async () => {
  mallory?.close();
  for (const peer of bystanders) peer.close();
  await media?.close();
});

// ---- checks ----------------------------------------------------------------------------------------

/** Successes that change no object count (or are undone at once); the id they name must be mallory's own. */
const HARMLESS: Partial<Record<Method, string | null>> = {
  getRouterRtpCapabilities: null,
  listProducers: null,
  ping: null,
  restartIce: 'transportId',
  setProducerPaused: 'producerId',
  resumeConsumer: 'consumerId',
  // Undone right after (see expectRefusedOrHarmless).
  produce: 'transportId',
};

function parsedRequest(frame: string): { method?: string; data?: Record<string, unknown> } {
  try {
    const parsed = JSON.parse(frame) as { method?: unknown; data?: unknown };
    // A hostile method may be an object whose toString throws: only a string names a method.
    if (typeof parsed.method !== 'string') return {};
    const data =
      parsed.data !== null && typeof parsed.data === 'object' ? (parsed.data as Record<string, unknown>) : {};
    return { method: parsed.method, data };
  } catch {
    return {};
  }
}

function ownIds(): string[] {
  return Object.values(ids.own);
}

/** Sends one frame on `conn` and checks everything a hostile frame must not do. */
async function expectRefusedOrHarmless(conn: RawSignaling, frame: string): Promise<void> {
  const counts = media.counts();
  const logMark = media.logs.length;
  const out = await within(CASE_TIMEOUT_MS, `frame ${frame.slice(0, 120)}`, conn.exchange(frame));
  if ('closed' in out)
    throw new Error(`the server closed the connection (${out.closed.code} ${out.closed.reason})`);
  checkAnswer(out.response, frame);
  if (out.response.ok && parsedRequest(frame).method === 'produce') {
    // A mutation can make a valid new producer; that is a legitimate success, undone here.
    const { producerId } = out.response.data as { producerId: string };
    await within(
      CASE_TIMEOUT_MS,
      'closeProducer',
      mallory.request(nextId++, 'closeProducer', { producerId }),
    );
  }
  expect(media.counts()).toEqual(counts);
  const errors = media.errorsSince(logMark);
  if (errors.length > 0)
    throw new Error(`the server logged an error: ${JSON.stringify(errors[0]).slice(0, 400)}`);
}

function checkAnswer(response: ResponseFrame, frame: string): void {
  if (response.ok) {
    const { method, data } = parsedRequest(frame);
    const idField = HARMLESS[method as Method];
    if (idField === undefined) throw new Error(`"${String(method)}" succeeded: ${frame.slice(0, 200)}`);
    if (idField !== null && !ownIds().includes(String(data?.[idField]))) {
      throw new Error(
        `${String(method)} succeeded on an object that is not mallory's: ${frame.slice(0, 200)}`,
      );
    }
    return;
  }
  if (!CLIENT_CODES.has(response.error.code) || !clearMessage(response.error.message)) {
    throw new Error(`answered ${JSON.stringify(response.error)} to ${frame.slice(0, 200)}`);
  }
}

/** A message a client can act on: not blank, not just mediasoup's request tag. */
function clearMessage(message: unknown): boolean {
  return typeof message === 'string' && !/^\s*(\[method:[^\]]*\])?\s*$/.test(message);
}

/** Frames larger than the limit close the socket by design; they have their own property. */
function fitsFrame(frame: string): boolean {
  return Buffer.byteLength(frame) <= MAX_SIGNALING_FRAME_BYTES;
}

// ---- inputs ----------------------------------------------------------------------------------------

/**
 * Ids of the fixture, as values (point mutations make them hostile): mallory's own half the time, so
 * cases get past the ownership checks into mediasoup; alice's and sam's otherwise.
 */
const fixtureId = (exclude: string[] = []): fc.Arbitrary<string> => {
  const pick = (list: string[]) => fc.constantFrom(...list.filter((id) => !exclude.includes(id)));
  return fc.oneof(
    pick(Object.values(ids.own)),
    pick([...Object.values(ids.alice), ...Object.values(ids.sam)]),
  );
};

/** Capabilities that can consume no audio: a consumer made in the fuzz could not be undone (no closeConsumer). */
function videoOnlyCaps(): unknown {
  const caps = routerCaps as { codecs: Array<{ kind: string }>; headerExtensions: unknown[] };
  return { ...caps, codecs: caps.codecs.filter((c) => c.kind === 'video') };
}

/**
 * Valid-shaped data for each joined method, built around the fixture's objects (mallory's own, alice's
 * and sam's), before mutation. `createWebRtcTransport` never gets a valid direction and `consume` never
 * usable capabilities: both would make objects the protocol has no way to remove.
 */
function templateFor(method: Exclude<Method, 'join' | 'leave'>): fc.Arbitrary<unknown> {
  switch (method) {
    case 'createWebRtcTransport':
      return fc.record({ direction: fc.constantFrom('SEND', 'both', '', 'recv ') });
    case 'connectWebRtcTransport':
      // Mallory's own transports are connected already: connecting again is a client mistake too.
      return fc.record({ transportId: fixtureId(), dtlsParameters: fc.constant(DTLS) });
    case 'restartIce':
      return fc.record({ transportId: fixtureId() });
    case 'produce':
      return fc.record({
        transportId: fc.oneof(
          { arbitrary: fc.constant(ids.own.send), weight: 2 },
          { arbitrary: fixtureId(), weight: 1 },
        ),
        kind: fc.constantFrom('audio', 'audio', 'video'),
        // Next to mallory's producer (mid "0", SSRC 1111): a duplicate mid or SSRC unless mutated away.
        rtpParameters: fc.constantFrom(rtp('0', 1111), rtp('1', 1111), rtp('0', 9999)),
        appData: fc.constant({ source: 'mic' }),
      });
    case 'setProducerPaused':
      return fc.record({ producerId: fixtureId(), paused: fc.boolean() });
    case 'closeProducer':
      return fc.record({ producerId: fixtureId([ids.own.producer]) });
    case 'consume':
      return fc.record({
        transportId: fixtureId(),
        producerId: fixtureId(),
        rtpCapabilities: fc.constant(videoOnlyCaps()),
      });
    case 'resumeConsumer':
      return fc.record({ consumerId: fixtureId() });
    default:
      return fc.constant({});
  }
}

/** Data for each joined method: a point-mutated template, or a template with whole fields hostile. */
function dataFor(method: Exclude<Method, 'join'>): fc.Arbitrary<string> {
  if (method === 'leave') {
    // An empty `leave` is a real leave; anything else in it is refused.
    return fc.oneof(
      fc
        .tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), hostileString), hostileJson)
        .map(([k, v]) => `{${JSON.stringify(k)}:${v}}`),
      fc.constantFrom('[]', '1', '"leave"', 'true'),
    );
  }
  const template = templateFor(method);
  const wholeFields = template.chain((t) =>
    mutatedObject(
      Object.fromEntries(Object.entries(t as object).map(([k, v]) => [k, fc.constant(JSON.stringify(v))])),
    ),
  );
  return fc.oneof({ arbitrary: pointMutated(template), weight: 3 }, { arbitrary: wholeFields, weight: 1 });
}

/** A request frame for `method`, now and then with a hostile envelope (id, method, extra keys). */
function frameFor(method: Method, data: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const plain = fc
    .tuple(fc.nat(), data)
    .map(([id, d]) => `{"id":${id},"method":${JSON.stringify(method)},"data":${d}}`);
  const envelope = mutatedObject({
    id: fc.oneof(
      fc.nat().map(String),
      fc.constantFrom('-1', '1.5', '"7"', 'null', '1e400', '9007199254740993'),
    ),
    method: fc.constantFrom(
      JSON.stringify(method),
      JSON.stringify(method.toUpperCase()),
      '"__proto__"',
      '"constructor"',
    ),
    data,
  });
  // A `leave` envelope that lost its data would be a real leave.
  if (method === 'leave') return plain.filter(fitsFrame);
  return fc.oneof({ arbitrary: plain, weight: 4 }, { arbitrary: envelope, weight: 1 }).filter(fitsFrame);
}

// ---- before join -----------------------------------------------------------------------------------

describe('an unjoined connection', () => {
  let scratch: RawSignaling;
  async function fresh(): Promise<RawSignaling> {
    if (!scratch?.isOpen) scratch = await RawSignaling.open(media.signalingUrl(ROOM));
    return scratch;
  }
  afterAll(() => scratch?.close());

  test('any text frame is answered with a protocol error and the peer count does not move', async () => {
    const anyText = fc.oneof(hostileJson, hostileString, frameFor('ping', hostileJson)).filter(fitsFrame);
    await checkProperty(
      'signaling frames before join',
      fc.asyncProperty(anyText, async (frame) => {
        const conn = await fresh();
        const counts = media.counts();
        const logMark = media.logs.length;
        const out = await within(CASE_TIMEOUT_MS, `frame ${frame.slice(0, 100)}`, conn.exchange(frame));
        if ('closed' in out) throw new Error(`closed (${out.closed.code}) on ${frame.slice(0, 100)}`);
        if (out.response.ok) expect(parsedRequest(frame).method).toBe('ping');
        else if (!CLIENT_CODES.has(out.response.error.code)) throw new Error(JSON.stringify(out.response));
        expect(media.counts()).toEqual(counts);
        expect(media.errorsSince(logMark)).toEqual([]);
      }),
    );
  });

  test('a hostile join is refused: bad data keeps the socket, a bad token closes it with 4001', async () => {
    const jwtish = fc
      .array(
        fc.base64String({ maxLength: 80 }).map((s) => s.replace(/=+$/, '')),
        { minLength: 3, maxLength: 3 },
      )
      .map((p) => p.join('.'));
    const token = fc.oneof(hostileString, jwtish).map((t) => JSON.stringify(t));
    const joinData = mutatedObject({ token, displayName: hostileString.map((s) => JSON.stringify(s)) });
    await checkProperty(
      'signaling join',
      fc.asyncProperty(frameFor('join', joinData), async (frame) => {
        const conn = await fresh();
        const counts = media.counts();
        const out = await within(CASE_TIMEOUT_MS, `join ${frame.slice(0, 100)}`, conn.exchange(frame));
        if ('closed' in out) throw new Error(`closed without an answer (${out.closed.code})`);
        const { response } = out;
        if (response.ok) throw new Error(`join succeeded: ${frame.slice(0, 200)}`);
        if (response.error.code === 'unauthorized') {
          const closed = await within(CASE_TIMEOUT_MS, 'close after unauthorized', conn.closed);
          expect(closed.code).toBe(4001);
        } else if (!CLIENT_CODES.has(response.error.code)) throw new Error(JSON.stringify(response));
        expect(media.counts()).toEqual(counts);
      }),
    );
  });

  test('frames that are not UTF-8 text or exceed the size limit close the socket cleanly; the server goes on', async () => {
    const oversized = fc.integer({
      min: MAX_SIGNALING_FRAME_BYTES + 1,
      max: MAX_SIGNALING_FRAME_BYTES + 4096,
    });
    await checkProperty(
      'signaling invalid UTF-8 and oversized frames',
      fc.asyncProperty(fc.oneof(invalidUtf8, oversized), async (bad) => {
        const conn = await RawSignaling.open(media.signalingUrl(ROOM));
        const logMark = media.logs.length;
        const frame = typeof bad === 'number' ? Buffer.alloc(bad, 0x20) : bad;
        const out = await within(CASE_TIMEOUT_MS, 'close on a bad frame', conn.exchange(frame));
        if (!('closed' in out))
          throw new Error(`answered instead of closing: ${JSON.stringify(out.response)}`);
        expect(out.closed.code).toBe(typeof bad === 'number' ? 1009 : 1007);
        expect(media.errorsSince(logMark)).toEqual([]);
      }),
      { numRuns: 1000 },
    );
    // Mallory, joined all along, is still served.
    expect(await mallory.request(nextId++, 'ping', {})).toHaveProperty('serverTime');
  });
});

// ---- joined ----------------------------------------------------------------------------------------

describe('a joined peer', () => {
  test('binary frames are refused without closing the connection', async () => {
    await checkProperty(
      'signaling binary frames',
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        const counts = media.counts();
        const out = await within(
          CASE_TIMEOUT_MS,
          'binary frame',
          mallory.exchange(Buffer.from(bytes), { binary: true }),
        );
        if ('closed' in out) throw new Error(`closed on a binary frame (${out.closed.code})`);
        expect(out.response).toMatchObject({ id: null, ok: false, error: { code: 'bad_request' } });
        expect(media.counts()).toEqual(counts);
      }),
    );
  });

  test('frames nested far beyond any real message are refused', async () => {
    const method = fc.constantFrom(...METHODS.filter((m): m is Exclude<Method, 'join'> => m !== 'join'));
    await checkProperty(
      'signaling deep nesting',
      fc.asyncProperty(
        method,
        deepJson,
        fc.constantFrom('data', 'dtlsParameters', 'rtpParameters', 'rtpCapabilities'),
        async (m, deep, where) => {
          const data =
            where === 'data'
              ? deep
              : `{"transportId":${JSON.stringify(ids.own.send)},${JSON.stringify(where)}:{"x":${deep}}}`;
          const frame = `{"id":${nextId++},"method":${JSON.stringify(m)},"data":${data}}`;
          fc.pre(fitsFrame(frame));
          await expectRefusedOrHarmless(mallory, frame);
        },
      ),
    );
  });

  test.each(METHODS.filter((m): m is Exclude<Method, 'join'> => m !== 'join'))(
    '%s: hostile data is refused or harmless, never internal, never a state change',
    async (method) => {
      await checkProperty(
        `signaling ${method}`,
        fc.asyncProperty(frameFor(method, dataFor(method)), (frame) =>
          expectRefusedOrHarmless(mallory, frame),
        ),
      );
      expect(mallory.isOpen).toBe(true);
    },
  );
});
