/**
 * SocketHealth on real ws sockets over 127.0.0.1: who is pinged, when a socket is dead, and what the
 * send guard refuses. The server side of each pair is what the LB and the media server hold.
 */
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { SocketHealth, type SocketHealthOptions } from '../../../runtime/protocol/SocketHealth';

/** Short, so a case takes a fraction of a second; every bound below is in periods of it. */
const PERIOD_MS = 40;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

let wss: WebSocketServer;
let port: number;
const accepted: WebSocket[] = [];
const opened: WebSocket[] = [];
const healths: SocketHealth[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  port = (wss.address() as AddressInfo).port;
});

afterEach(() => {
  for (const h of healths.splice(0)) h.stop();
  for (const ws of [...accepted.splice(0), ...opened.splice(0)]) ws.terminate();
});

afterAll(async () => {
  await new Promise<void>((resolve) => wss.close(() => resolve()));
});

/** A connected pair: `server` is the accepted side, `client` the side that dialled. */
async function pair(clientOptions: WebSocket.ClientOptions = {}) {
  const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${port}`, clientOptions);
  client.on('error', () => {});
  opened.push(client);
  await new Promise((resolve) => client.once('open', resolve));
  const server = await serverSide;
  server.on('error', () => {});
  accepted.push(server);
  return { server, client };
}

function watch(socket: WebSocket, options: Partial<SocketHealthOptions> = {}) {
  const events = { dead: 0, slow: [] as number[], deadState: -1 };
  const health = new SocketHealth(socket, {
    pingIntervalMs: PERIOD_MS,
    onDead: () => {
      events.dead++;
      events.deadState = socket.readyState;
    },
    onSlowReader: (buffered) => events.slow.push(buffered),
    ...options,
  });
  healths.push(health);
  return { health, events };
}

function countPings(socket: WebSocket): { count: number } {
  const seen = { count: 0 };
  socket.on('ping', () => seen.count++);
  return seen;
}

async function until(check: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('keepalive', () => {
  it('pings an open socket every period and keeps one that answers', async () => {
    const { server, client } = await pair();
    const pings = countPings(client);
    const { events } = watch(server);
    await until(() => pings.count >= 4, 'four pings');
    expect(events.dead).toBe(0);
    expect(server.readyState).toBe(WebSocket.OPEN);
  });

  it('calls a socket dead, once, at the ping after the one it did not answer', async () => {
    const { server, client } = await pair({ autoPong: false });
    const pings = countPings(client);
    const { events } = watch(server);
    await until(() => events.dead > 0, 'onDead');
    // One ping went out and was not answered; the next tick judged instead of pinging again.
    expect(pings.count).toBe(1);
    expect(events.deadState).toBe(WebSocket.OPEN);
    await sleep(4 * PERIOD_MS);
    expect(events.dead).toBe(1);
    expect(pings.count).toBe(1);
  });

  it('calls a socket that answered earlier pings dead at the ping after the first it missed', async () => {
    const { server, client } = await pair({ autoPong: false });
    const pings = countPings(client);
    client.on('ping', () => {
      if (pings.count <= 2) client.pong();
    });
    const { events } = watch(server);
    await until(() => events.dead > 0, 'onDead');
    expect(pings.count).toBe(3);
  });

  it('neither pings nor judges a socket that is still connecting, and starts once it opens', async () => {
    // A TCP server that takes the connection and never answers the upgrade.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      socket.on('error', () => {});
      held.push(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const connecting = new WebSocket(`ws://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      connecting.on('error', () => {});
      opened.push(connecting);
      const { events } = watch(connecting);
      await sleep(5 * PERIOD_MS);
      expect(connecting.readyState).toBe(WebSocket.CONNECTING);
      expect(events.dead).toBe(0);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }

    // The same client-side watch on a handshake that completes late: pings begin after it.
    const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const late = new WebSocket(`ws://127.0.0.1:${port}`);
    late.on('error', () => {});
    opened.push(late);
    const { events } = watch(late);
    const server = await serverSide;
    accepted.push(server);
    const pings = countPings(server);
    await until(() => pings.count >= 3, 'three pings after the handshake');
    expect(events.dead).toBe(0);
  });

  it('judges a closing socket without pinging it: a peer ignoring our close frame is dead within two periods', async () => {
    const { server, client } = await pair();
    // The client stops reading: it never sees the close frame, so it never answers it.
    client.pause();
    const pings = countPings(client);
    const { events } = watch(server);
    server.close(1000, 'bye');
    const closedAt = performance.now();
    await until(() => events.dead > 0, 'onDead');
    expect(events.deadState).toBe(WebSocket.CLOSING);
    // ws itself would wait 30 s for the close handshake.
    expect(performance.now() - closedAt).toBeLessThan(10_000);
    client.resume();
    await sleep(PERIOD_MS);
    expect(pings.count).toBe(0);
  });

  it('stops by itself when the socket closes, and stop() is idempotent and leaves no listener', async () => {
    const { server, client } = await pair({ autoPong: false });
    const before = { pong: server.listenerCount('pong'), close: server.listenerCount('close') };
    const { health, events } = watch(server);
    expect(server.listenerCount('pong')).toBe(before.pong + 1);
    const serverClosed = new Promise((resolve) => server.once('close', resolve));
    client.close(1000);
    await serverClosed;
    await sleep(4 * PERIOD_MS);
    expect(events.dead).toBe(0);
    health.stop();
    health.stop();
    expect(server.listenerCount('pong')).toBe(before.pong);
    expect(server.listenerCount('close')).toBe(before.close);
  });

  it('refuses a period that is not a positive number, saying what it got', async () => {
    const { server } = await pair();
    const onDead = () => {};
    expect(() => new SocketHealth(server, { pingIntervalMs: 0, onDead })).toThrow(
      /pingIntervalMs must be a positive number of milliseconds; got 0/,
    );
    expect(() => new SocketHealth(server, { pingIntervalMs: Number.NaN, onDead })).toThrow(/got NaN/);
    expect(() => new SocketHealth(server, { pingIntervalMs: 10, onDead, maxBufferedBytes: -1 })).toThrow(
      /maxBufferedBytes must be 0 or more; got -1/,
    );
  });
});

describe('send guard', () => {
  const FRAME = Buffer.alloc(64 * 1024, 1);
  const BOUND = 256 * 1024;

  it('sends everything to a client that reads', async () => {
    const { server, client } = await pair();
    let received = 0;
    client.on('message', () => received++);
    const { health, events } = watch(server, { pingIntervalMs: 60_000, maxBufferedBytes: BOUND });
    for (let i = 0; i < 100; i++) {
      expect(health.send(FRAME, { binary: true })).toBe(true);
      await nextTurn();
    }
    await until(() => received === 100, 'every frame at the client');
    expect(events.slow).toEqual([]);
  });

  it('refuses, and reports, every frame while a client that does not read holds more than the bound', async () => {
    const { server, client } = await pair();
    let received = 0;
    client.on('message', () => received++);
    client.pause();
    const { health, events } = watch(server, { pingIntervalMs: 60_000, maxBufferedBytes: BOUND });
    let sent = 0;
    // The kernel's socket buffers take a few MiB first; the bound applies to what is left in ours.
    for (let i = 0; i < 2_000 && events.slow.length === 0; i++) {
      if (health.send(FRAME, { binary: true })) sent++;
      await nextTurn();
    }
    expect(events.slow).toHaveLength(1);
    expect(events.slow[0]).toBeGreaterThan(BOUND);
    expect(health.send(FRAME, { binary: true })).toBe(false);
    expect(health.send('text too', {})).toBe(false);
    expect(events.slow).toHaveLength(3);
    // Nothing refused went out: the client, reading again, gets exactly what was accepted.
    client.resume();
    await until(() => received === sent, `${sent} frames at the client`, 10_000);
    await sleep(2 * PERIOD_MS);
    expect(received).toBe(sent);
  });

  it('refuses a socket that is not open, without calling it slow', async () => {
    const { server, client } = await pair();
    const { health, events } = watch(server, { maxBufferedBytes: BOUND });
    const serverClosed = new Promise((resolve) => server.once('close', resolve));
    client.close(1000);
    await serverClosed;
    expect(health.send('late')).toBe(false);
    expect(events.slow).toEqual([]);
  });

  it('has no bound unless given one', async () => {
    const { server, client } = await pair();
    client.pause();
    const { health, events } = watch(server, { pingIntervalMs: 60_000 });
    for (let i = 0; i < 400; i++) expect(health.send(FRAME, { binary: true })).toBe(true);
    expect(server.bufferedAmount).toBeGreaterThan(BOUND);
    expect(events.slow).toEqual([]);
  });
});
