/**
 * Slow clients are cut at the LB's configured limits: a client that trickles its headers, or its body,
 * must not hold a socket (and a file descriptor, and a slot in the ALB) past `headersTimeoutMs` and
 * `requestTimeoutMs`. Measured with raw sockets that send one byte at a time.
 */
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
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
