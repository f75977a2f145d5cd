import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  SignalingLostError,
  SignalingOpenError,
  SignalingRequestError,
} from '../../../runtime/client/errors';
import { nodePlatform } from '../../../runtime/client/nodePlatform';
import type { Platform } from '../../../runtime/client/platform';
import { SignalingChannel } from '../../../runtime/client/SignalingChannel';
import { SIGNALING_SUBPROTOCOL } from '../../../runtime/protocol/subprotocol';
import { refusedUrl } from './httpServers';

const TOKEN = 'header.payload.signature';
const OPTIONS = { openTimeoutMs: 1_000, requestTimeoutMs: 500, pingMs: 60_000, pongTimeoutMs: 60_000 };

/** A ws server whose answers the test scripts per socket. */
async function startWs(
  onMessage: (ws: WebSocket, frame: { id: number; method: string; data: unknown }) => void,
) {
  const server = http.createServer();
  const wss = new WebSocketServer({
    server,
    handleProtocols: (offered) => (offered.has(SIGNALING_SUBPROTOCOL) ? SIGNALING_SUBPROTOCOL : false),
  });
  const upgrades: Array<{ url: string; protocols: string }> = [];
  wss.on('connection', (ws, req) => {
    upgrades.push({ url: req.url ?? '', protocols: String(req.headers['sec-websocket-protocol']) });
    ws.on('message', (raw) => onMessage(ws, JSON.parse(raw.toString())));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    wss,
    upgrades,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => server.close(() => resolve()));
      }),
  };
}

describe('SignalingChannel', () => {
  let platform: Platform;
  const cleanups: Array<() => unknown> = [];
  beforeEach(() => {
    platform = nodePlatform({});
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    platform.close();
  });

  it('matches responses to requests and turns ok:false into SignalingRequestError', async () => {
    const ws = await startWs((sock, { id, method }) => {
      if (method === 'ping') sock.send(JSON.stringify({ id, ok: true, data: { serverTime: 1 } }));
      else
        sock.send(
          JSON.stringify({ id, ok: false, error: { code: 'not_found', message: 'transport "t" not found' } }),
        );
    });
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    cleanups.push(() => channel.close());
    await expect(channel.request('ping', {})).resolves.toEqual({ serverTime: 1 });
    const err = await channel.request('restartIce', { transportId: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignalingRequestError);
    expect(err).toMatchObject({
      method: 'restartIce',
      code: 'not_found',
      message: expect.stringContaining('"t" not found'),
    });
    expect(channel.isOpen).toBe(true);
  });

  it('delivers notifications and reports malformed frames without dropping the call', async () => {
    const ws = await startWs(() => undefined);
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    cleanups.push(() => channel.close());
    const notification = channel.next('notification');
    const malformed = channel.next('malformed');
    const [server] = [...ws.wss.clients];
    server!.send('not json');
    server!.send(JSON.stringify({ notification: 'peerLeft', data: { peerId: 'p1' } }));
    expect(await malformed).toEqual({ detail: expect.stringContaining('not a JSON object') });
    expect(await notification).toEqual({ name: 'peerLeft', data: { peerId: 'p1' } });
    expect(channel.isOpen).toBe(true);
  });

  it('an unanswered request means the server is lost', async () => {
    const ws = await startWs(() => undefined);
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    const lost = channel.next('lost');
    await expect(channel.request('listProducers', {})).rejects.toBeInstanceOf(SignalingLostError);
    expect(await lost).toMatchObject({ reason: 'request_timeout' });
    expect(channel.isOpen).toBe(false);
  });

  it('unanswered pings mean the server is lost', async () => {
    const ws = await startWs(() => undefined);
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
      requestTimeoutMs: 10_000,
      pingMs: 50,
      pongTimeoutMs: 150,
    });
    expect(await channel.next('lost')).toMatchObject({ reason: 'ping_timeout' });
  });

  it('a socket closed by the server fails pending requests and reports the loss once', async () => {
    const ws = await startWs((sock) => sock.close(4000, 'going away'));
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    const losses: unknown[] = [];
    channel.on('lost', (l) => losses.push(l));
    await expect(channel.request('listProducers', {})).rejects.toMatchObject({ reason: 'signaling_closed' });
    expect(losses).toEqual([
      { reason: 'signaling_closed', detail: 'socket closed with 4000 (going away)', closeCode: 4000 },
    ]);
  });

  it('an intentional close reports no loss', async () => {
    const ws = await startWs(() => undefined);
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: ws.url,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    const losses: unknown[] = [];
    channel.on('lost', (l) => losses.push(l));
    const pending = channel.request('listProducers', {});
    channel.close();
    await expect(pending).rejects.toBeInstanceOf(SignalingLostError);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(losses).toEqual([]);
  });

  it('presents the media token as a subprotocol, never in the URL', async () => {
    const ws = await startWs(() => undefined);
    cleanups.push(ws.close);
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: `${ws.url}/v1/rooms/r/signal`,
      mediaToken: TOKEN,
      ...OPTIONS,
    });
    cleanups.push(() => channel.close());
    expect(ws.upgrades).toEqual([
      { url: '/v1/rooms/r/signal', protocols: `${SIGNALING_SUBPROTOCOL},mrwebrtc.token.${TOKEN}` },
    ]);
  });

  it('refuses a server that does not select the signaling protocol', async () => {
    const server = http.createServer();
    // An old edge, or something else on the port: it accepts the socket but not our protocol.
    const wss = new WebSocketServer({ server, handleProtocols: () => false });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => server.close(() => resolve()))));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await expect(
      SignalingChannel.open({ openSocket: platform.openSocket, url, mediaToken: TOKEN, ...OPTIONS }),
    ).rejects.toBeInstanceOf(SignalingOpenError);
  });

  it('fails to open against a refused port with SignalingOpenError', async () => {
    const url = (await refusedUrl()).replace('http:', 'ws:');
    await expect(
      SignalingChannel.open({ openSocket: platform.openSocket, url, mediaToken: TOKEN, ...OPTIONS }),
    ).rejects.toBeInstanceOf(SignalingOpenError);
  });
});
