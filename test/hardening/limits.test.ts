/**
 * Every limit at its production default, on the real processes (an LB process in front of a media
 * server process): exceeding one gets a clear answer, the offending connection stays usable or is closed
 * cleanly, and a second client in the same test is served throughout.
 *
 * The limits' own mechanics are covered in test/runtime/lb/relay.test.ts (relay frame size and rate
 * against an echo server), ops.test.ts (joins per subject with a tiny limit, requests per address) and
 * test/runtime/media/signaling.test.ts (frame size and flood on the media server).
 */
import * as net from 'node:net';
import WebSocket from 'ws';
import { signJoinToken } from '../../runtime/protocol/tokens';
import { DEFAULT_LIMITS } from '../../runtime/lb/config';
import { DEFAULT_SIGNALING_LIMITS } from '../../runtime/media/config';
import { MAX_SIGNALING_FRAME_BYTES } from '../../runtime/protocol/signaling';
import { TEST_JOIN_KEYS } from '../runtime/media/mediaServerProcess';
import { startEdge, type Edge } from './edgeHarness';
import { RawSignaling } from './mediaHarness';

jest.setTimeout(60_000);

let edge: Edge;
let requestId = 1;

beforeAll(async () => {
  edge = await startEdge({ media: [{ serverId: 'limits-media', rtcMinPort: 22_240, rtcMaxPort: 22_279 }] });
  await edge.waitReady();
}, 60_000);

afterAll(async () => {
  await edge?.stop();
});

afterEach(() => {
  // Whatever a test threw at it, the LB process is still running and logged no fault of its own.
  expect(edge.lb.running).toBe(true);
  expect(edge.lb.errorLines()).toEqual([]);
});

// ---- HTTP on one connection --------------------------------------------------------------------------

interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One keep-alive HTTP/1.1 connection, requests in sequence: shows whether a refusal kept it usable. */
class HttpConnection {
  private buffer = Buffer.alloc(0);
  private waiter?: () => void;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      }),
    );
    socket.on('error', () => {});
  }

  static open(baseUrl: string): Promise<HttpConnection> {
    const { hostname, port } = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => resolve(new HttpConnection(socket)));
      socket.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  async send(head: string, body: string | Buffer = ''): Promise<HttpAnswer> {
    this.socket.write(
      Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n') + '\r\n\r\n'), Buffer.from(body)]),
    );
    for (;;) {
      const answer = this.take();
      if (answer) return answer;
      if (this.ended) throw new Error(`connection closed without an answer`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private take(): HttpAnswer | undefined {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(
      lines
        .slice(1)
        .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers['content-length'] ?? 0);
    if (this.buffer.length < end + 4 + length) return undefined;
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString();
    this.buffer = this.buffer.subarray(end + 4 + length);
    return { status: Number(lines[0]!.split(' ')[1]), headers, body };
  }
}

async function joinRequest(room: string, sub: string, body: string): Promise<string> {
  const token = await signJoinToken(TEST_JOIN_KEYS, { sub, room });
  return [
    `POST /v1/rooms/${room}/join HTTP/1.1`,
    'Host: lb',
    `Authorization: Bearer ${token}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ].join('\n');
}

const PING = 'GET /v1/ping HTTP/1.1\nHost: lb';

describe('LB', () => {
  test('a body over the limit is a 413 in the API error shape; the connection closes cleanly or stays usable', async () => {
    const conn = await HttpConnection.open(edge.lb.baseUrl);
    const big = JSON.stringify({ rtt: {}, pad: 'x'.repeat(DEFAULT_LIMITS.bodyLimitBytes) });
    const answer = await conn.send(await joinRequest('big-body', 'alice', big), big);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'body_too_large', message: expect.any(String) },
    });
    // Closed cleanly means announced: the answer says so, then the server ends the connection.
    if (answer.headers.connection === 'close') await conn.closed;
    else expect((await conn.send(PING)).status).toBe(200);
    conn.close();
    // Another client is served meanwhile.
    expect((await edge.join('big-body', { sub: 'bob' })).status).toBe(200);
  });

  test('a body announced over the limit is refused before it is sent', async () => {
    const conn = await HttpConnection.open(edge.lb.baseUrl);
    const head = (await joinRequest('liar', 'alice', '')).replace(
      /Content-Length: \d+/,
      'Content-Length: 100000000',
    );
    const answer = await conn.send(head);
    expect(answer.status).toBe(413);
    conn.close();
    expect((await edge.join('liar', { sub: 'bob' })).status).toBe(200);
  });

  test(`joins over ${DEFAULT_LIMITS.joinsPerMinute} a minute for one subject get 429 with Retry-After; the connection, other subjects and other routes go on`, async () => {
    const conn = await HttpConnection.open(edge.lb.baseUrl);
    const statuses: number[] = [];
    let limited: HttpAnswer | undefined;
    for (let i = 0; i <= DEFAULT_LIMITS.joinsPerMinute; i++) {
      const answer = await conn.send(await joinRequest('busy', 'greedy', '{}'), '{}');
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
    }
    expect(statuses.slice(0, DEFAULT_LIMITS.joinsPerMinute).every((s) => s === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    expect(JSON.parse(limited!.body)).toEqual({
      error: { code: 'rate_limited', message: expect.stringContaining('retry later') },
    });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    // Same connection: other routes are still answered.
    expect((await conn.send(PING)).status).toBe(200);
    conn.close();
    expect((await edge.join('busy', { sub: 'patient' })).status).toBe(200);
  });
});

// ---- signaling ---------------------------------------------------------------------------------------

/**
 * Sends `count` pings back to back on the socket; resolves with every answer once all are in, the
 * socket closed, or `settleMs` passed.
 */
async function flood(
  conn: RawSignaling,
  count: number,
  settleMs = 2_000,
): Promise<Array<{ ok: boolean; error?: { code: string } }>> {
  const answers: Array<{ ok: boolean; error?: { code: string } }> = [];
  const onMessage = (data: WebSocket.RawData) => {
    const frame = JSON.parse(data.toString()) as { ok?: boolean; error?: { code: string } };
    if ('ok' in frame) answers.push(frame as { ok: boolean; error?: { code: string } });
  };
  conn.socket.on('message', onMessage);
  let sent = 0;
  for (; sent < count && conn.isOpen; sent++) {
    conn.socket.send(JSON.stringify({ id: requestId++, method: 'ping', data: {} }));
  }
  const deadline = Date.now() + settleMs;
  while (answers.length < sent && conn.isOpen && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  conn.socket.off('message', onMessage);
  conn.discardResponses();
  return answers;
}

/** Joins `room` through the LB and opens its signaling URL (the relay); resolves joined. */
async function viaLb(room: string, sub: string): Promise<RawSignaling> {
  const { status, body } = await edge.join(room, { sub });
  expect(status).toBe(200);
  const conn = await RawSignaling.open(body.signalingUrl, body.mediaToken);
  await conn.request(requestId++, 'join', { token: body.mediaToken });
  return conn;
}

async function stillServed(conn: RawSignaling): Promise<void> {
  expect(conn.isOpen).toBe(true);
  expect(await conn.request(requestId++, 'ping', {})).toHaveProperty('serverTime');
}

describe('signaling through the LB relay', () => {
  test('a client flooding messages is closed with 1008 and leaves the room; the other client goes on', async () => {
    const bystander = await viaLb('relay-flood', 'bob');
    const flooder = await viaLb('relay-flood', 'mallory');
    await flood(flooder, DEFAULT_LIMITS.relayMessageBurst * 3);
    expect(await flooder.closed).toEqual({
      code: 1008,
      reason: expect.stringMatching(/messages per second/),
    });
    await stillServed(bystander);
    await waitUntil(
      () => bystander.notifications.some((n) => n.notification === 'peerLeft'),
      'peerLeft for the flooder',
    );
    bystander.close();
  });

  test('a frame over the size limit closes that client with 1009; the other client goes on', async () => {
    const bystander = await viaLb('relay-big', 'bob');
    const sender = await viaLb('relay-big', 'mallory');
    sender.socket.send('x'.repeat(MAX_SIGNALING_FRAME_BYTES + 1));
    expect((await sender.closed).code).toBe(1009);
    await stillServed(bystander);
    bystander.close();
  });
});

describe('signaling on the media server', () => {
  async function direct(room: string, peerId: string): Promise<RawSignaling> {
    const server = edge.media[0]!;
    const conn = await RawSignaling.open(server.signalingUrl(room));
    await conn.request(requestId++, 'join', { token: await server.mediaToken(room, peerId) });
    return conn;
  }

  test('over the burst a client is answered rate_limited and can go on once it slows down', async () => {
    const bystander = await direct('media-rate', 'bob-1');
    const eager = await direct('media-rate', 'eager-1');
    const answers = await flood(eager, DEFAULT_SIGNALING_LIMITS.messageBurst + 10);
    expect(answers.filter((a) => !a.ok).map((a) => a.error?.code)).toContain('rate_limited');
    expect(eager.isOpen).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    await stillServed(eager);
    await stillServed(bystander);
    eager.close();
    bystander.close();
  });

  test('a client that keeps flooding is closed with 1008; the other client goes on', async () => {
    const bystander = await direct('media-flood', 'bob-2');
    const flooder = await direct('media-flood', 'mallory-2');
    await flood(flooder, DEFAULT_SIGNALING_LIMITS.messageBurst * 4);
    expect(await flooder.closed).toMatchObject({ code: 1008 });
    await stillServed(bystander);
    bystander.close();
  });
});

async function waitUntil(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
