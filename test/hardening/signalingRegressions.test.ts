/**
 * Defects the signaling fuzz (signalingFuzz.test.ts) found, one named example each, on a real media
 * server in this process: each case must get a client-side protocol error at once, log no error and
 * leave the connection usable.
 */
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(30_000);

let media: InProcessMediaServer;
let peerCount = 0;
let requestId = 1;

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'regressions-media',
    rtcMinPort: 22_140,
    rtcMaxPort: 22_179,
  });
});

afterAll(async () => {
  await media?.close();
});

const DTLS = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF' }] };

async function joined(room: string): Promise<RawSignaling> {
  const conn = await RawSignaling.open(media.signalingUrl(room));
  await conn.request(requestId++, 'join', { token: await media.mediaToken(room, `reg-peer-${++peerCount}`) });
  return conn;
}

async function transport(conn: RawSignaling, direction: 'send' | 'recv'): Promise<string> {
  return (await conn.request<{ id: string }>(requestId++, 'createWebRtcTransport', { direction })).id;
}

/** Sends raw text and returns the error the server answered with (failing on a success or a close). */
async function refusal(conn: RawSignaling, text: string): Promise<{ code: string; message: string }> {
  const out = await conn.exchange(text);
  if ('closed' in out) throw new Error(`closed (${out.closed.code})`);
  if (out.response.ok) throw new Error(`succeeded: ${JSON.stringify(out.response.data)}`);
  return out.response.error;
}

function frame(method: string, data: unknown): string {
  return JSON.stringify({ id: requestId++, method, data });
}

describe('connectWebRtcTransport', () => {
  test('connecting a connected transport again is bad_request, not internal', async () => {
    const conn = await joined('reconnect');
    const logMark = media.logs.length;
    const id = await transport(conn, 'send');
    await conn.request(requestId++, 'connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS });
    expect(
      await refusal(conn, frame('connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS })),
    ).toEqual({
      code: 'bad_request',
      message: `transport "${id}" is already connected; create a new one`,
    });
    expect(media.errorsSince(logMark)).toEqual([]);
    expect(await conn.request(requestId++, 'restartIce', { transportId: id })).toHaveProperty(
      'iceParameters',
    );
    conn.close();
  });
});

describe('produce', () => {
  const opus = { mimeType: 'audio/opus', payloadType: 111, clockRate: 48_000, channels: 2 };
  const rtp = (mid: string | undefined, encodings: unknown[]) => ({
    ...(mid !== undefined ? { mid } : {}),
    codecs: [opus],
    encodings,
  });

  test('a mid, SSRC or RID another producer of the transport holds is bad_request naming it', async () => {
    const conn = await joined('duplicates');
    const logMark = media.logs.length;
    const send = await transport(conn, 'send');
    const produce = (rtpParameters: unknown) =>
      frame('produce', { transportId: send, kind: 'audio', rtpParameters });
    const first = await conn.request<{ producerId: string }>(requestId++, 'produce', {
      transportId: send,
      kind: 'audio',
      rtpParameters: rtp('0', [{ ssrc: 1111, rid: 'r0', rtx: { ssrc: 1112 } }]),
    });
    const cases: Array<[unknown, string]> = [
      [rtp('0', [{ ssrc: 2222 }]), `mid "0" is already used by producer "${first.producerId}"`],
      [rtp('1', [{ ssrc: 1111 }]), `SSRC 1111 is already used by producer "${first.producerId}"`],
      [rtp('1', [{ ssrc: 3333, rtx: { ssrc: 1112 } }]), 'SSRC 1112 is already used'],
      // The worker reads SSRCs as uint32: 2^32 + 1111 is 1111.
      [rtp('1', [{ ssrc: 2 ** 32 + 1111 }]), 'SSRC 1111 is already used'],
      [rtp(undefined, [{ rid: 'r0' }]), 'rid "r0" is already used'],
      [rtp('1', [{ ssrc: 4444 }, { ssrc: 4444 }]), 'SSRC 4444 appears twice'],
    ];
    for (const [rtpParameters, message] of cases) {
      expect(await refusal(conn, produce(rtpParameters))).toEqual({
        code: 'bad_request',
        message: expect.stringContaining(message),
      });
    }
    expect(media.errorsSince(logMark)).toEqual([]);

    // A closed producer's identifiers are free again.
    await conn.request(requestId++, 'closeProducer', { producerId: first.producerId });
    expect(
      await conn.request(requestId++, 'produce', {
        transportId: send,
        kind: 'audio',
        rtpParameters: rtp('0', [{ ssrc: 1111 }]),
      }),
    ).toHaveProperty('producerId');
    conn.close();
  });

  test("mediasoup's refusals say what was refused, even when the worker gives no reason", async () => {
    const conn = await joined('reasons');
    const send = await transport(conn, 'send');
    // The legacy worker refuses this (a payload type out of range) with an empty reason.
    const error = await refusal(
      conn,
      frame('produce', {
        transportId: send,
        kind: 'audio',
        rtpParameters: { mid: '0', codecs: [{ ...opus, payloadType: 1e300 }], encodings: [{ ssrc: -5 }] },
      }),
    );
    expect(error.code).toBe('bad_request');
    expect(error.message).not.toMatch(/^\s*(\[method:[^\]]*\])?\s*$/);
    conn.close();
  });

  test('another transport of the same peer has identifiers of its own', async () => {
    const conn = await joined('two-transports');
    for (let i = 0; i < 2; i++) {
      const send = await transport(conn, 'send');
      expect(
        await conn.request(requestId++, 'produce', {
          transportId: send,
          kind: 'audio',
          rtpParameters: rtp('0', [{ ssrc: 1111 }]),
        }),
      ).toHaveProperty('producerId');
    }
    conn.close();
  });
});

describe('frame structure', () => {
  /** Far below mediasoup's 15 s channel timeout, which is what a dropped worker request waits for. */
  const PROMPT_MS = 2_000;

  async function promptRefusal(conn: RawSignaling, text: string): Promise<{ code: string; message: string }> {
    const started = Date.now();
    const error = await refusal(conn, text);
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
    return error;
  }

  test('a lone surrogate is refused before it reaches the worker, which would never answer', async () => {
    const conn = await joined('surrogates');
    const logMark = media.logs.length;
    const send = await transport(conn, 'send');
    const text = `{"id":${requestId++},"method":"connectWebRtcTransport","data":{"transportId":"${send}","dtlsParameters":{"role":"client","fingerprints":[{"algorithm":"sha-256","value":"\\ud800"}]}}}`;
    expect(await promptRefusal(conn, text)).toEqual({
      code: 'bad_request',
      message:
        'frame.data.dtlsParameters.fingerprints.0.value is not well-formed Unicode (it holds a lone surrogate)',
    });
    // A surrogate pair is fine, and the transport still connects.
    await conn.request(requestId++, 'connectWebRtcTransport', {
      transportId: send,
      dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:\ud83d\ude00' }] },
    });
    expect(media.errorsSince(logMark)).toEqual([]);
    conn.close();
  });

  test('nesting beyond any real message is refused instead of overflowing the stack', async () => {
    const conn = await joined('deep');
    const logMark = media.logs.length;
    const send = await transport(conn, 'send');
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const text = `{"id":${requestId++},"method":"produce","data":{"transportId":"${send}","kind":"audio","rtpParameters":{"codecs":[],"x":${deep}}}}`;
    expect(await promptRefusal(conn, text)).toEqual({
      code: 'bad_request',
      message: 'frame nests deeper than 16 levels',
    });
    expect(media.errorsSince(logMark)).toEqual([]);
    conn.close();
  });

  test('a __proto__ key is refused, whatever it holds', async () => {
    const conn = await joined('proto');
    const send = await transport(conn, 'send');
    const text = `{"id":${requestId++},"method":"connectWebRtcTransport","data":{"transportId":"${send}","dtlsParameters":{"__proto__":{"role":"client","fingerprints":[{"algorithm":"sha-256","value":"AB"}]}}}}`;
    expect(await promptRefusal(conn, text)).toEqual({
      code: 'bad_request',
      message: 'frame.data.dtlsParameters has a forbidden key "__proto__"',
    });
    conn.close();
  });
});

describe('socket-level violations', () => {
  test.each([
    ['an oversized frame', Buffer.alloc(64 * 1024 + 1, 0x20), 1009],
    ['a text frame that is not UTF-8', Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]), 1007],
  ])('%s closes the socket with its code and is not logged as a server error', async (_what, bytes, code) => {
    const conn = await RawSignaling.open(media.signalingUrl('lobby'));
    const logMark = media.logs.length;
    const out = await conn.exchange(bytes);
    expect(out).toEqual({ closed: expect.objectContaining({ code }) });
    // The close travels before the server's own handling finishes; give the log a moment.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(media.errorsSince(logMark)).toEqual([]);
  });
});
