/**
 * The real LB process (runtime/lb/server.ts) as the local supervisor and ECS run it: env contract in,
 * HTTP out, region summary written at start, and a graceful SIGTERM that closes relays with 1001.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import WebSocket from 'ws';
import { lbEnvironment } from '../../../runtime/protocol/lbEnvironment';
import { signalingSubprotocols } from '../../../runtime/protocol/subprotocol';
import { Store } from '../../../runtime/store';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';
import { startEchoServer, type EchoServer } from '../../support/echoServer';
import { JOIN_KEYS_DOC, joinToken, MEDIA_KEYS_DOC, mediaServer } from './lbHarness';

const ENTRY = path.join(__dirname, '..', '..', '..', 'runtime', 'lb', 'server.ts');

let dynamo: TestDynamo;
let admin: Store;
let echo: EchoServer;

beforeAll(async () => {
  dynamo = await startDynalite({ region: 'eu-west-1' });
  admin = new Store({
    region: 'eu-west-1',
    tableName: dynamo.tableName,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
  echo = await startEchoServer({ greeting: 'hello' });
});

afterAll(async () => {
  admin.close();
  await echo.close();
  await dynamo.close();
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function startLbProcess(env: Record<string, string>): {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
} {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
    env: { PATH: process.env.PATH, AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function waitForPing(base: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${base}/v1/ping`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`LB at ${base} never answered /v1/ping`);
}

it('refuses to start on a bad environment, naming the variable', async () => {
  const lb = startLbProcess({
    REGION: 'eu-west-1',
    TABLE_NAME: 't',
    JOIN_TOKEN_KEYS: JSON.stringify({ kid: 'k1', secret: 'short' }),
    MEDIA_TOKEN_KEYS: JSON.stringify(MEDIA_KEYS_DOC),
    PUBLIC_API_URL: 'http://127.0.0.1:1',
  });
  expect(await lb.exited).toBe(2);
  expect(lb.output()).toMatch(/JOIN_TOKEN_KEYS: secret is 5 bytes; use at least 32 random bytes/);
});

it('serves joins, reports its region, relays signaling and shuts down gracefully on SIGTERM', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await admin.servers.register({ ...mediaServer('eu-echo', 'eu-west-1', { endpoint: echo.endpoint }) });
  const lb = startLbProcess(
    lbEnvironment({
      region: 'eu-west-1',
      tableName: dynamo.tableName,
      dynamoEndpoint: dynamo.endpoint,
      joinTokenKeys: JSON.stringify(JOIN_KEYS_DOC),
      mediaTokenKeys: JSON.stringify(MEDIA_KEYS_DOC),
      host: '127.0.0.1',
      port,
      publicApiUrl: base,
      logLevel: 'warn',
    }),
  );
  try {
    await waitForPing(base);
    expect((await fetch(`${base}/health`)).status).toBe(200);

    const res = await fetch(`${base}/v1/rooms/proc-room/join`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await joinToken('proc-room')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({}),
    });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { serverId: string; signalingUrl: string; mediaToken: string };
    expect(answer.serverId).toBe('eu-echo');
    // Written at start, in the background.
    let summaryUrl: string | undefined;
    for (let i = 0; i < 50 && !summaryUrl; i++) {
      summaryUrl = (await admin.regions.list()).find((r) => r.region === 'eu-west-1')?.summary?.apiUrl;
      if (!summaryUrl) await new Promise((r) => setTimeout(r, 100));
    }
    expect(summaryUrl).toBe(base);

    const upstream = echo.nextConnection();
    const client = new WebSocket(answer.signalingUrl, signalingSubprotocols(answer.mediaToken));
    const greeting = new Promise<string>((resolve) => client.once('message', (d) => resolve(d.toString())));
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    expect(await greeting).toBe('hello');

    lb.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await (await upstream).closed).toBe(1001);
    expect(await lb.exited).toBe(0);
  } finally {
    lb.child.kill('SIGKILL');
  }
}, 60_000);
