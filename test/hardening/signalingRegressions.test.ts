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
