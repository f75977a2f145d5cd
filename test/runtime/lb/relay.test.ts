import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import WebSocket from 'ws';
import { signMediaToken } from '../../../runtime/protocol/tokens';
import { MAX_SIGNALING_FRAME_BYTES } from '../../../runtime/protocol/signaling';
import { signalingSubprotocols } from '../../../runtime/protocol/subprotocol';
import { startEchoServer, type EchoServer } from '../../support/echoServer';
import { join, MEDIA_KEYS, mediaServer, startLb, type LbHarness } from './lbHarness';

let h: LbHarness;
let echo: EchoServer;
let lbOrigin: string;

beforeAll(async () => {
  h = await startLb({
    config: {
      limits: {
        relayKeepaliveMs: 150,
        relayMessagesPerSecond: 20,
        relayMessageBurst: 20,
        relayConnectTimeoutMs: 2_000,
      },
    },
  });
  echo = await startEchoServer({ greeting: '{"notification":"hello","data":{}}' });
  await h.admin.servers.put(mediaServer('eu-echo', 'eu-west-1', { endpoint: echo.endpoint }));
  await h.app.fleet.refresh();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  lbOrigin = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await echo.close();
  await h.close();
});

interface Client {
  readonly ws: WebSocket;
  readonly messages: Array<{ text: string; isBinary: boolean }>;
  readonly closed: Promise<{ code: number; reason: string }>;
  nextMessage(): Promise<string>;
}

/** Opens `url` presenting `token` the way clients do (a subprotocol). */
function connect(url: string, token: string, opts: WebSocket.ClientOptions = {}): Client {
  const ws = new WebSocket(url, signalingSubprotocols(token), opts);
  const messages: Array<{ text: string; isBinary: boolean }> = [];
  const waiters: Array<(m: string) => void> = [];
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    messages.push({ text: data.toString(), isBinary });
    waiters.shift()?.(data.toString());
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return {
    ws,
    messages,
    closed,
    nextMessage: () =>
      new Promise((resolve) => {
        const seen = messages.length;
        // Messages may arrive before the caller asks; hand out the oldest unseen one.
        if (seen > handed.get(ws)!) resolve(messages[handed.get(ws)!]!.text);
        else waiters.push(resolve);
        handed.set(ws, handed.get(ws)! + 1);
      }),
  };
}
const handed = new WeakMap<WebSocket, number>();

/** A media token opens one session; every test token names a peer of its own. */
let peers = 0;
const nextPeerId = () => `peer-${++peers}`;

/** Joins through the API and opens the answered signaling URL on the listening LB. */
async function openRelay(room: string, opts: WebSocket.ClientOptions = {}) {
  const answer = (await join(h, room)).json();
  const url = new URL(answer.signalingUrl);
  const upstream = echo.nextConnection();
  expect(url.search).toBe('');
  const client = connect(`${lbOrigin}${url.pathname}`, answer.mediaToken, opts);
  handed.set(client.ws, 0);
  await new Promise((resolve) => client.ws.once('open', resolve));
  // The media server's greeting came through the relay: from here on both legs are open.
  await client.nextMessage();
  return { client, upstream: await upstream, answer };
}

/** The HTTP status (and error body) of a refused upgrade. */
function refusedUpgrade(
  path: string,
  token?: string,
): Promise<{ status: number; body: { error: { code: string } } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${lbOrigin}${path}`, token === undefined ? [] : signalingSubprotocols(token));
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
  });
}

async function relaysOpen(): Promise<number> {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' });
  return Number(/lb_relays_open\{region="eu-west-1"\} (\d+)/.exec(res.body)![1]);
}

async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition never became true');
}

it('relays frames both ways, text as text and binary as binary, with the token passed through', async () => {
  const { client, upstream, answer } = await openRelay('relay-1');
  expect(upstream.url).toBe(`/v1/rooms/relay-1/signal?token=${encodeURIComponent(answer.mediaToken)}`);
  expect(upstream.headers['x-forwarded-for']).toBe('127.0.0.1');
  // Frames pass through as they are: the LB offers the media server no compression to undo.
  expect(upstream.headers['sec-websocket-extensions']).toBeUndefined();
  // The media server spoke first (a notification), then echoes what the client sends.
  expect(client.messages[0]!.text).toBe('{"notification":"hello","data":{}}');
  client.ws.send('{"id":1,"method":"ping","data":{}}');
  expect(await client.nextMessage()).toBe('{"id":1,"method":"ping","data":{}}');
  client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await client.nextMessage();
  expect(client.messages.map((m) => m.isBinary)).toEqual([false, false, true]);
  expect(upstream.received).toEqual(['{"id":1,"method":"ping","data":{}}', '\u0001\u0002\u0003']);
  expect(await relaysOpen()).toBe(1);
  client.ws.close(1000, 'bye');
  expect(await upstream.closed).toBe(1000);
  await eventually(async () => (await relaysOpen()) === 0);
});

it('closes the client with the media server’s own code when the media server closes', async () => {
  const { client, upstream } = await openRelay('relay-2');
  upstream.socket.close(4001, 'room closed');
  expect(await client.closed).toEqual({ code: 4001, reason: 'room closed' });
});

it('closes the client with 1014 when the media server connection is lost', async () => {
  const { client, upstream } = await openRelay('relay-3');
  upstream.socket.terminate();
  expect(await client.closed).toEqual({ code: 1014, reason: 'media server connection lost' });
});

it('refuses an oversized frame (1009) and closes the media server leg', async () => {
  const { client, upstream } = await openRelay('relay-4');
  client.ws.send('x'.repeat(MAX_SIGNALING_FRAME_BYTES + 1));
  expect((await client.closed).code).toBe(1009);
  await upstream.closed;
  expect(upstream.received).toEqual([]);
});

it('closes a client that floods messages with 1008', async () => {
  const { client, upstream } = await openRelay('relay-5');
  for (let i = 0; i < 60; i++) client.ws.send(`{"id":${i},"method":"ping","data":{}}`);
  expect(await client.closed).toMatchObject({
    code: 1008,
    reason: expect.stringMatching(/messages per second/),
  });
  expect(await upstream.closed).toBe(1001);
  expect(upstream.received.length).toBeLessThanOrEqual(20);
});

it('drops a client that stops answering pings, and tells the media server', async () => {
  const { upstream } = await openRelay('relay-6', { autoPong: false });
  expect(await upstream.closed).toBe(1001);
});

it('drops the client with 1014 when the media server stops answering pings', async () => {
  const { client, upstream } = await openRelay('relay-7');
  // Freeze the media server's side: no pongs, no frames, socket left open (a host gone dark).
  upstream.socket.pause();
  expect(await client.closed).toEqual({ code: 1014, reason: 'media server stopped answering' });
  upstream.socket.terminate();
});

describe('refused before the upgrade', () => {
  it('without a token (401) or with a token for another room (403)', async () => {
    expect(await refusedUpgrade('/v1/rooms/r1/signal')).toMatchObject({
      status: 401,
      body: { error: { code: 'token_missing' } },
    });
    const { token } = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'other',
      server: 'eu-echo',
    });
    expect(await refusedUpgrade('/v1/rooms/r1/signal', token)).toMatchObject({
      status: 403,
      body: { error: { code: 'token_wrong_scope' } },
    });
  });

  it('for a server of another region (403) or an unknown server (404)', async () => {
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1', { endpoint: echo.endpoint }));
    const us = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'r1',
      server: 'us-a',
    });
    expect(await refusedUpgrade('/v1/rooms/r1/signal', us.token)).toMatchObject({
      status: 403,
      body: { error: { code: 'wrong_region' } },
    });
    const ghost = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'r1',
      server: 'ghost',
    });
    expect(await refusedUpgrade('/v1/rooms/r1/signal', ghost.token)).toMatchObject({
      status: 404,
      body: { error: { code: 'server_not_found' } },
    });
  });

  it('for a plain HTTP GET with a valid token (426)', async () => {
    const { token } = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'r1',
      server: 'eu-echo',
    });
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/rooms/r1/signal',
      headers: { 'sec-websocket-protocol': signalingSubprotocols(token).join(', ') },
    });
    expect(res.statusCode).toBe(426);
    expect(res.json().error.code).toBe('upgrade_required');
  });

  it('with any query parameter, a token in the URL included (400)', async () => {
    const { token } = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'r1',
      server: 'eu-echo',
    });
    expect((await refusedUpgrade(`/v1/rooms/r1/signal?x=1`, token)).status).toBe(400);
    expect(await refusedUpgrade(`/v1/rooms/r1/signal?token=${token}`)).toMatchObject({
      status: 400,
      body: { error: { code: 'token_in_url' } },
    });
  });
});

describe('media server trouble at connect time', () => {
  it('closes the client with 1014 when the media server is unreachable', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await h.admin.servers.put(mediaServer('eu-gone', 'eu-west-1', { endpoint: `ws://127.0.0.1:${port}` }));
    const { token } = await signMediaToken(MEDIA_KEYS, {
      peerId: nextPeerId(),
      identity: 'a',
      room: 'r9',
      server: 'eu-gone',
    });
    const client = connect(`${lbOrigin}/v1/rooms/r9/signal`, token);
    expect(await client.closed).toEqual({ code: 1014, reason: 'media server unreachable' });
  });

  it.each([
    [401, 4001, 'media server refused the media token (401)'],
    [409, 4001, 'media server refused the media token (409)'],
    [410, 1008, 'media server refused the connection (410)'],
  ])('closes the client when the media server answers %i: %i', async (status, code, reason) => {
    const refusing = await startEchoServer({ rejectWithStatus: status });
    try {
      await h.admin.servers.put(mediaServer('eu-refusing', 'eu-west-1', { endpoint: refusing.endpoint }));
      const { token } = await signMediaToken(MEDIA_KEYS, {
        peerId: nextPeerId(),
        identity: 'a',
        room: 'r9',
        server: 'eu-refusing',
      });
      const client = connect(`${lbOrigin}/v1/rooms/r9/signal`, token);
      expect(await client.closed).toEqual({ code, reason });
    } finally {
      await refusing.close();
    }
  });
});

it('closes open relays with 1001 when the LB shuts down', async () => {
  const { client, upstream } = await openRelay('relay-last');
  const closing = h.app.close();
  expect(await client.closed).toMatchObject({ code: 1001 });
  expect(await upstream.closed).toBe(1001);
  await closing;
});
