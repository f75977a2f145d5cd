/** The health checker's HTTP probe against real servers: what passes, what fails, and argument checks. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HealthChecker, httpProbe } from '../../../runtime/local/HealthChecker';

const ADDRESS = '127.0.74.1';
let server: http.Server;
let url: string;
let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;

beforeAll(async () => {
  server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, ADDRESS, () => r()));
  url = `http://${ADDRESS}:${(server.address() as AddressInfo).port}/health`;
});

afterAll(async () => {
  await new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
});

test('2xx and 3xx pass, 4xx and 5xx fail, as Route 53 counts them', async () => {
  for (const [status, ok] of [
    [200, true],
    [204, true],
    [302, true],
    [404, false],
    [503, false],
  ] as const) {
    handler = (_req, res) => res.writeHead(status).end();
    expect(await httpProbe({ region: 'r', url }, 1_000)).toEqual({ ok, detail: `HTTP ${status}` });
  }
});

test('an endpoint that accepts but never answers fails after the timeout and flips the region', async () => {
  handler = () => undefined;
  const checker = new HealthChecker({
    targets: [{ region: 'eu-west-1', url }],
    intervalMs: 50,
    failureThreshold: 2,
    timeoutMs: 100,
  });
  checker.start();
  try {
    const deadline = Date.now() + 5_000;
    while (checker.status()[0]!.state !== 'unhealthy' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(checker.status()[0]).toMatchObject({
      state: 'unhealthy',
      routable: false,
      lastProbeOk: false,
      lastError: 'no answer within 100 ms',
    });
    expect(checker.isRoutable('eu-west-1')).toBe(false);
  } finally {
    checker.stop();
  }
});

test('bad settings are refused with the value', () => {
  expect(() => new HealthChecker({ targets: [], intervalMs: 0, failureThreshold: 3 })).toThrow(
    /intervalMs must be > 0, got 0/,
  );
  expect(() => new HealthChecker({ targets: [], intervalMs: 100, failureThreshold: 0 })).toThrow(
    /failureThreshold must be an integer >= 1, got 0/,
  );
});
