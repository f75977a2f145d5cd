/**
 * A tiny real WebSocket server that stands in for a media server's signaling endpoint in relay tests:
 * it serves `/v1/rooms/:roomId/signal` (and `/cascade`, the legs' control channel), echoes every frame (text stays text), and records what it saw.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface EchoConnection {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly socket: WebSocket;
  readonly received: string[];
  /** Resolves with the close code this server saw. */
  readonly closed: Promise<number>;
}

export interface EchoServer {
  /** `ws://127.0.0.1:<port>`: what a media server registers as its private endpoint. */
  readonly endpoint: string;
  readonly connections: EchoConnection[];
  nextConnection(): Promise<EchoConnection>;
  close(): Promise<void>;
}

export async function startEchoServer(
  opts: { rejectWithStatus?: number; greeting?: string } = {},
): Promise<EchoServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, done) =>
      opts.rejectWithStatus ? done(false, opts.rejectWithStatus, 'refused by test') : done(true),
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const connections: EchoConnection[] = [];
  const waiters: Array<(c: EchoConnection) => void> = [];
  let handedOut = 0;
  wss.on('connection', (socket, req) => {
    const received: string[] = [];
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('error', () => {});
    socket.on('message', (data, isBinary) => {
      received.push(data.toString());
      socket.send(data, { binary: isBinary });
    });
    if (!/^\/v1\/rooms\/[^/]+\/(signal|cascade)\?token=/.test(req.url ?? ''))
      socket.close(4404, 'wrong path');
    if (opts.greeting) socket.send(opts.greeting);
    const conn: EchoConnection = { url: req.url ?? '', headers: req.headers, socket, received, closed };
    connections.push(conn);
    const waiter = waiters.shift();
    if (waiter) {
      handedOut++;
      waiter(conn);
    }
  });
  return {
    endpoint: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    connections,
    /** The oldest connection not handed out yet, waiting for one if needed. */
    nextConnection: () =>
      new Promise((resolve) => {
        if (connections.length > handedOut) resolve(connections[handedOut++]!);
        else waiters.push(resolve);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
