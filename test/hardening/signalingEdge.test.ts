/**
 * The signaling edge under a client that holds one valid media token (issue: no participant disturbs
 * more than its own peer):
 *   - a media token opens one signaling session, however many times it is presented;
 *   - one address or one identity cannot hold more than its share of relays;
 *   - no credential ever reaches the LB's logs, whatever URL a client sends.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { signMediaToken } from '../../runtime/protocol/tokens';
import { createLbLogger } from '../../runtime/lb/logging';
import { signalingSubprotocols } from '../../runtime/protocol/subprotocol';
import { startEchoServer, type EchoServer } from '../support/echoServer';
import { join, MEDIA_KEYS, mediaServer, startLb, type LbHarness } from '../runtime/lb/lbHarness';

let h: LbHarness;
let echo: EchoServer;
let origin: string;
const logLines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  h = await startLb({
    config: { limits: { relaysPerIdentity: 2, relaysPerAddress: 4 } },
    logger: createLbLogger({ level: 'debug', region: 'eu-west-1' }, sink),
  });
  echo = await startEchoServer();
  await h.admin.servers.put(mediaServer('eu-echo', 'eu-west-1', { endpoint: echo.endpoint }));
  await h.app.fleet.refresh();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  origin = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await h?.close();
  await echo?.close();
});

let peer = 0;
async function mediaToken(identity: string, room = 'edge-room'): Promise<string> {
  const { token } = await signMediaToken(MEDIA_KEYS, {
    peerId: `peer-${++peer}`,
    identity,
    room,
    server: 'eu-echo',
  });
  return token;
}

/** Opens a relay; resolves with the socket once open, or with the HTTP refusal. */
function open(
  token: string,
  room = 'edge-room',
): Promise<{ ws: WebSocket } | { status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${origin}/v1/rooms/${room}/signal`, signalingSubprotocols(token));
    ws.on('error', () => {});
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(body).error.code }));
    });
    setTimeout(() => reject(new Error('no answer to the upgrade')), 5_000).unref();
  });
}

async function closeAll(...results: Array<{ ws: WebSocket } | { status: number }>): Promise<void> {
  await Promise.all(
    results.map(
      (r) =>
        new Promise<void>((resolve) => {
          if (!('ws' in r) || r.ws.readyState === WebSocket.CLOSED) return resolve();
          r.ws.once('close', () => resolve());
          r.ws.close(1000, 'done');
        }),
    ),
  );
  // The LB frees a relay's slot when it sees the close.
  await new Promise((r) => setTimeout(r, 100));
}

test('a media token opens one signaling session: a second upgrade, concurrent or later, is refused (409)', async () => {
  const token = await mediaToken('alice');
  const [first, second] = await Promise.all([open(token), open(token)]);
  const outcomes = [first, second].map((r) => ('ws' in r ? 'open' : `${r.status} ${r.code}`)).sort();
  expect(outcomes).toEqual(['409 token_used', 'open']);
  await closeAll(first, second);
  expect(await open(token)).toEqual({ status: 409, code: 'token_used' });
  expect(echo.connections.length).toBe(1);
});

test('relays are capped per identity (429), and a closed relay frees its slot', async () => {
  const a = await open(await mediaToken('bob'));
  const b = await open(await mediaToken('bob', 'another-room'), 'another-room');
  expect(['ws' in a ? 'open' : a, 'ws' in b ? 'open' : b]).toEqual(['open', 'open']);
  expect(await open(await mediaToken('bob', 'a-third-room'), 'a-third-room')).toEqual({
    status: 429,
    code: 'too_many_sessions',
  });
  // Another identity from the same address is not affected.
  const carol = await open(await mediaToken('carol'));
  expect('ws' in carol).toBe(true);
  await closeAll(a);
  const again = await open(await mediaToken('bob', 'a-third-room'), 'a-third-room');
  expect('ws' in again).toBe(true);
  await closeAll(b, carol, again);
});

test('relays are capped per client address (429)', async () => {
  const opened = [];
  for (let i = 0; i < 4; i++) opened.push(await open(await mediaToken(`user-${i}`)));
  expect(opened.every((r) => 'ws' in r)).toBe(true);
  expect(await open(await mediaToken('user-5'))).toEqual({ status: 429, code: 'too_many_sessions' });
  await closeAll(...opened);
  const after = await open(await mediaToken('user-6'));
  expect('ws' in after).toBe(true);
  await closeAll(after);
});

test('no credential reaches the logs: not the join token, not the media token, not a token put in the URL', async () => {
  logLines.length = 0;
  const res = await join(h, 'logged-room');
  expect(res.statusCode).toBe(200);
  const { mediaToken: answered } = res.json() as { mediaToken: string };
  const relay = await open(answered, 'logged-room');
  expect('ws' in relay).toBe(true);
  // A client that puts the token in the URL is refused, and its URL is logged redacted.
  const misplaced = await mediaToken('dave');
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${origin}/v1/rooms/edge-room/signal?token=${misplaced}`);
    ws.on('error', () => {});
    ws.once('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0));
  });
  expect(refused).toBe(400);
  await closeAll(relay);
  const text = logLines.join('\n');
  expect(text).toContain('/v1/rooms/edge-room/signal?token=[redacted]');
  // Any JWT (base64url JSON header starting `{"`) anywhere in any line.
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  expect(text).not.toContain(answered);
  expect(text).not.toContain(misplaced);
});
