/**
 * Slow clients are cut at the LB's configured limits: a client that trickles its headers, or its body,
 * must not hold a socket (and a file descriptor, and a slot in the ALB) past `headersTimeoutMs` and
 * `requestTimeoutMs`. Measured with raw sockets that send one byte at a time.
 */
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { DEFAULT_LIMITS } from '../../runtime/lb/config';
import { joinToken, startLb, type LbHarness } from '../runtime/lb/lbHarness';

const HEADERS_TIMEOUT_MS = 600;
const REQUEST_TIMEOUT_MS = 1_200;
/** Node sweeps for late requests once a second (runtime/lb/app.ts): the cut comes within one sweep. */
const SWEEP_MS = 1_000;
/** Before the fix the defaults held such clients for 30 s (headers) and up to 90 s (body). */
const GENEROUS_MS = 4 * SWEEP_MS;

let h: LbHarness;
let port: number;

beforeAll(async () => {
  h = await startLb({
    config: { limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS } },
  });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  port = (h.app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await h?.close();
});

/** Sends `head` then `trickle` one byte every 100 ms; resolves when the server ends the socket. */
function trickle(head: string, trickleText: string): Promise<{ heldMs: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = performance.now();
    let answer = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < trickleText.length && !socket.destroyed) socket.write(trickleText[i++]!);
    }, 100);
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ heldMs: performance.now() - started, answer });
    });
    socket.write(head);
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server held the slow client for 20 s'));
    }, 20_000).unref();
  });
}

test('a client trickling its headers is cut after headersTimeoutMs (408)', async () => {
  const { heldMs, answer } = await trickle(
    'GET /v1/ping HTTP/1.1\r\nHost: x\r\n',
    'X-Slow: ' + 'a'.repeat(200),
  );
  expect(answer).toMatch(/^HTTP\/1\.1 408/);
  expect(heldMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
  expect(heldMs).toBeLessThan(HEADERS_TIMEOUT_MS + GENEROUS_MS);
});

test('a client trickling its body is cut after requestTimeoutMs (408), and nothing is placed', async () => {
  const token = await joinToken('slow-room');
  const body = JSON.stringify({ rtt: { 'eu-west-1': 10 } });
  const head =
    `POST /v1/rooms/slow-room/join HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length + 100}\r\n\r\n`;
  const { heldMs, answer } = await trickle(head, body + ' '.repeat(100));
  expect(answer).toMatch(/^HTTP\/1\.1 408/);
  expect(heldMs).toBeLessThan(REQUEST_TIMEOUT_MS + GENEROUS_MS);
  expect(h.commands.filter((c) => c !== 'QueryCommand')).toEqual([]);
});

test('a headers timeout above the request timeout is refused at start', async () => {
  await expect(
    startLb({ config: { limits: { headersTimeoutMs: 5_000, requestTimeoutMs: 1_000 } } }),
  ).rejects.toThrow(/headersTimeoutMs \(5000\) exceeds requestTimeoutMs \(1000\)/);
});

/**
 * The other side of the same socket budget: an idle keep-alive connection is the ALB's to close. The ALB
 * reuses an idle connection to a target for up to its idle timeout (120 s, lib/lb-service.ts); if the
 * service closed it first, the request the ALB sends on it just then is answered with a 502. So the
 * service's keepAliveTimeoutMs (above the ALB's, test/lib/region-stack.test.ts) must be what closes an
 * idle connection, not the headers or request timeout, which start with a request's first byte.
 */
describe('an idle keep-alive connection', () => {
  /** Not Node's default (5 s), so the test tells the configured value from a dropped option. */
  const KEEP_ALIVE_MS = 6_000;
  /** Past both request timeouts and their sweeps, still inside the keep-alive. */
  const IDLE_MS = REQUEST_TIMEOUT_MS + 2 * SWEEP_MS;
  let idle: LbHarness;
  let idlePort: number;

  beforeAll(async () => {
    idle = await startLb({
      config: {
        limits: {
          headersTimeoutMs: HEADERS_TIMEOUT_MS,
          requestTimeoutMs: REQUEST_TIMEOUT_MS,
          keepAliveTimeoutMs: KEEP_ALIVE_MS,
        },
      },
    });
    await idle.app.listen({ host: '127.0.0.1', port: 0 });
    idlePort = (idle.app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await idle?.close();
  });

  test('runs with the configured keep-alive (the default is above the ALB idle timeout)', () => {
    expect(h.app.server.keepAliveTimeout).toBe(DEFAULT_LIMITS.keepAliveTimeoutMs);
    expect(idle.app.server.keepAliveTimeout).toBe(KEEP_ALIVE_MS);
  });

  test('stays open past the headers and request timeouts, and is closed by keepAliveTimeoutMs', async () => {
    const socket = net.connect(idlePort, '127.0.0.1');
    socket.on('error', () => {});
    let received = '';
    let closedAt: number | undefined;
    socket.on('data', (d) => (received += d.toString()));
    socket.on('close', () => (closedAt = performance.now()));
    // A second answer follows the first body on the same line: no line anchor.
    const answers = () => received.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    const until = async (what: string, done: () => boolean, ms: number) => {
      const deadline = performance.now() + ms;
      while (!done()) {
        if (performance.now() > deadline) throw new Error(`no ${what} within ${ms} ms: ${received}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const ping = 'GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n';
    try {
      socket.write(ping);
      await until('first answer', () => answers().length === 1, 2_000);
      await new Promise((r) => setTimeout(r, IDLE_MS));
      expect(closedAt).toBeUndefined();
      socket.write(ping);
      await until('second answer', () => answers().length === 2, 2_000);
      const answeredAt = performance.now();
      expect(answers()).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
      await until('close', () => closedAt !== undefined, KEEP_ALIVE_MS + GENEROUS_MS);
      const heldMs = closedAt! - answeredAt;
      expect(heldMs).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 200);
      expect(heldMs).toBeLessThan(KEEP_ALIVE_MS + GENEROUS_MS);
    } finally {
      socket.destroy();
    }
  });
});
