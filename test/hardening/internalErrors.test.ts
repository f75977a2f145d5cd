/**
 * Our own failures stay ours (issue #15): when the media server fails a request for a reason that is
 * not the client's (a bug, a mediasoup call that throws for the server's own state), the client is
 * answered `internal` / `internal error` and the detail goes to our log at error level with its stack.
 * The client's own mistakes keep their clear messages. Real mediasoup worker, real sockets, real
 * dynalite, on a loopback address of its own.
 */
import type { EngineWorker } from '../../runtime/media/engine';
import { waitFor } from '../support/wrtcPeer';
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(30_000);

/** Three RTC ports: the legacy engine binds one per transport, so the fourth transport finds none. */
const RTC_PORTS = 3;
const DTLS = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF' }] };

let media: InProcessMediaServer;
let requestId = 1;
let peerCount = 0;
const open: RawSignaling[] = [];

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'internal-errors-media',
    address: '127.0.116.1',
    rtcMinPort: 40_100,
    rtcMaxPort: 40_100 + RTC_PORTS - 1,
  });
});

afterEach(async () => {
  for (const conn of open.splice(0)) conn.close();
  // The next test needs the RTC ports back.
  await waitFor(() => media.counts().transports === 0, 'the transports to close', 5_000, 20);
});

afterAll(async () => {
  await media?.close();
});

async function joined(room: string): Promise<RawSignaling> {
  const conn = await RawSignaling.open(media.signalingUrl(room));
  open.push(conn);
  await conn.request(requestId++, 'join', { token: await media.mediaToken(room, `ie-peer-${++peerCount}`) });
  return conn;
}

async function answer(conn: RawSignaling, method: string, data: unknown) {
  const out = await conn.exchange(JSON.stringify({ id: requestId++, method, data }));
  if ('closed' in out) throw new Error(`${method}: closed (${out.closed.code})`);
  return out.response;
}

function worker(): EngineWorker {
  return media.running.server.pool.alive[0]!;
}

describe('a failure of ours is answered "internal error" and logged with its stack', () => {
  test('a bug-shaped TypeError thrown under a request never reaches the client', async () => {
    const conn = await joined('bug');
    const detail = "Cannot read properties of undefined (reading 'listenIps') in /srv/media/secret-path.js";
    const engine = worker();
    const original = engine.createWebRtcTransport;
    (engine as { createWebRtcTransport: EngineWorker['createWebRtcTransport'] }).createWebRtcTransport =
      async () => {
        throw new TypeError(detail);
      };
    const mark = media.logs.length;
    try {
      const response = await answer(conn, 'createWebRtcTransport', { direction: 'send' });
      expect(response).toEqual({
        id: expect.any(Number),
        ok: false,
        error: { code: 'internal', message: 'internal error' },
      });
      expect(JSON.stringify(response)).not.toContain('secret-path');
    } finally {
      (engine as { createWebRtcTransport: EngineWorker['createWebRtcTransport'] }).createWebRtcTransport =
        original;
    }
    const logged = media.errorsSince(mark);
    expect(logged).toEqual([
      expect.objectContaining({
        msg: 'signaling request failed',
        method: 'createWebRtcTransport',
        err: expect.objectContaining({ message: detail, stack: expect.stringContaining('TypeError') }),
      }),
    ]);
    // The connection goes on.
    expect(await conn.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
    expect(media.counts()).toMatchObject({ transports: 0 });
  });

  test('mediasoup refusing for its own state (no free RTC port) is internal; the worker says why in our log', async () => {
    const conn = await joined('ports');
    for (let i = 0; i < RTC_PORTS; i++) {
      await conn.request(requestId++, 'createWebRtcTransport', { direction: i === 0 ? 'send' : 'recv' });
    }
    const mark = media.logs.length;
    expect(await answer(conn, 'createWebRtcTransport', { direction: 'recv' })).toEqual({
      id: expect.any(Number),
      ok: false,
      error: { code: 'internal', message: 'internal error' },
    });
    const [logged] = media.errorsSince(mark);
    expect(logged).toMatchObject({
      msg: 'signaling request failed',
      method: 'createWebRtcTransport',
      err: { message: expect.stringMatching(/port/i), stack: expect.any(String) },
    });
    expect(media.counts()).toMatchObject({ transports: RTC_PORTS });
  });
});

describe("the client's own mistakes keep their clear messages", () => {
  test('RTP parameters mediasoup refuses are bad_request with its message, and nothing is logged as an error', async () => {
    const conn = await joined('client-mistakes');
    const { id } = await conn.request<{ id: string }>(requestId++, 'createWebRtcTransport', {
      direction: 'send',
    });
    await conn.request(requestId++, 'connectWebRtcTransport', { transportId: id, dtlsParameters: DTLS });
    const mark = media.logs.length;
    const response = await answer(conn, 'produce', {
      transportId: id,
      kind: 'audio',
      rtpParameters: { codecs: 'nope' },
    });
    expect(response).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(!response.ok && response.error.message).toMatch(/codecs/);
    const caps = await answer(conn, 'consume', {
      transportId: id,
      producerId: 'ghost',
      rtpCapabilities: {},
    });
    expect(caps).toMatchObject({
      ok: false,
      error: { code: 'not_found', message: 'producer "ghost" not found' },
    });
    expect(media.errorsSince(mark)).toEqual([]);
  });
});
