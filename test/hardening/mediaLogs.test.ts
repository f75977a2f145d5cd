/**
 * No credential reaches the media server's log (issue #15, "Secrets stay secret"; on the local stack
 * these lines are `.local/logs/<region>-m<n>.log`). test/hardening/signalingEdge.test.ts shows it for
 * the LB; this is the media server's half, at the most verbose level, through everything a media token
 * does there: the LB relay's private hop with the token in its URL, the `join` that presents it, a
 * replay refused before the upgrade, a token of another room and a tampered one refused at `join`, and a
 * second session of the identity replacing the first. Real media server in this process (real
 * mediasoup worker, real sockets, real dynalite) on a loopback address of its own.
 */
import { RawSignaling, startInProcessMediaServer, type InProcessMediaServer } from './mediaHarness';

jest.setTimeout(60_000);

/** Any JWT: a base64url JSON header (`{"` → `eyJ`), a payload and a signature. */
const JWT = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/;

let media: InProcessMediaServer;
const open: RawSignaling[] = [];
let requestId = 1;

beforeAll(async () => {
  media = await startInProcessMediaServer({
    serverId: 'media-logs',
    address: '127.0.119.1',
    rtcMinPort: 40_300,
    rtcMaxPort: 40_309,
    logLevel: 'trace',
  });
});

afterAll(async () => {
  for (const conn of open) conn.close();
  await media?.close();
});

async function connect(room: string, urlToken?: string): Promise<RawSignaling> {
  const conn = await RawSignaling.open(media.signalingUrl(room, urlToken));
  open.push(conn);
  return conn;
}

const joinFrame = (token: string) => JSON.stringify({ id: requestId++, method: 'join', data: { token } });

test('joins, refusals, a replay and a replaced session leave no token in any log line', async () => {
  const from = media.logs.length;
  const tokens: string[] = [];
  const mint = async (room: string, peerId: string, identity: string) => {
    const token = await media.mediaToken(room, peerId, { identity });
    tokens.push(token);
    return token;
  };

  // As the LB relay connects: the token in the private hop's URL, then in `join`.
  const first = await mint('logged-room', 'peer-1', 'alice');
  const alice = await connect('logged-room', first);
  await alice.request(requestId++, 'join', { token: first });

  // The same token again: refused before the upgrade.
  await expect(connect('logged-room', first)).rejects.toMatchObject({ statusCode: 409 });

  // Another room's token, and a tampered one: refused at `join`.
  const elsewhere = await mint('another-room', 'peer-2', 'mallory');
  const tampered = `${first.slice(0, -6)}AAAAAA`;
  tokens.push(tampered);
  for (const token of [elsewhere, tampered]) {
    const conn = await connect('logged-room');
    const out = await conn.exchange(joinFrame(token));
    expect('closed' in out ? out.closed.code : out.response.ok).not.toBe(true);
  }

  // A second session of alice replaces the first.
  const second = await mint('logged-room', 'peer-3', 'alice');
  const again = await connect('logged-room', second);
  await again.request(requestId++, 'join', { token: second });
  expect((await alice.closed).code).toBe(4003);
  again.close();
  await again.closed;
  await new Promise((r) => setTimeout(r, 200));

  const lines = media.logs.slice(from).map((line) => JSON.stringify(line));
  // The sink saw the calls (so the absence below means something).
  expect(lines.some((l) => l.includes('peer joined'))).toBe(true);
  expect(lines.some((l) => l.includes('peer replaced by a newer session of its identity'))).toBe(true);
  const text = lines.join('\n');
  expect(text).not.toMatch(JWT);
  for (const token of tokens) expect(text).not.toContain(token.split('.')[2]!);
});
