/**
 * A network path between a client and a media server that a test can degrade, on real sockets:
 *
 * - `SignalingPath`: a WebSocket relay in front of a media server's signaling port (as the LB's relay
 *   is). `freeze()` holds every frame in both directions (a frozen process: sockets open, nothing
 *   answers) until `thaw()`; `jitterMs` delays every frame by a uniform [0, jitterMs] while keeping
 *   each direction's order, as TCP does.
 * - With `mediaJitterMs`, the ICE candidates in the server's transport answers are rewritten to UDP
 *   relays that forward each datagram after a uniform [0, mediaJitterMs] delay (reordering included,
 *   as a jittery network does). The server is ICE-lite and accepts the relay's address as the tuple.
 */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';

export interface SignalingPathOptions {
  /** `ws://host:port` of the media server's signaling listener. */
  readonly target: string;
  /** @default 0 */
  readonly jitterMs?: number;
  /** Jitter of the media path, through UDP relays. @default 0 (media goes straight to the server) */
  readonly mediaJitterMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
}

/** One direction of a relayed socket: frames leave in order, each no earlier than its jittered time. */
class Lane {
  private lastDue = 0;
  private readonly held: string[] = [];

  constructor(
    private readonly path: SignalingPath,
    private readonly deliver: (frame: string) => void,
  ) {}

  push(frame: string): void {
    if (this.path.frozen) {
      this.held.push(frame);
      return;
    }
    const due = Math.max(this.lastDue, Date.now() + this.path.jitter());
    this.lastDue = due;
    const wait = due - Date.now();
    if (wait <= 0) this.deliver(frame);
    else setTimeout(() => this.deliver(frame), wait);
  }

  flush(): void {
    for (const frame of this.held.splice(0)) this.push(frame);
  }
}

export class SignalingPath {
  frozen = false;
  private httpServer!: http.Server;
  private wss!: WebSocketServer;
  private readonly lanes = new Set<Lane>();
  private readonly sockets = new Set<WebSocket>();
  private readonly relays = new Map<string, UdpJitterRelay>();
  private readonly random: () => number;

  constructor(private readonly options: SignalingPathOptions) {
    this.random = options.random ?? Math.random;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.httpServer.address() as AddressInfo).port}`;
  }

  jitter(): number {
    return this.options.jitterMs ? this.random() * this.options.jitterMs : 0;
  }

  async start(): Promise<this> {
    this.httpServer = http.createServer();
    this.wss = new WebSocketServer({
      server: this.httpServer,
      handleProtocols: (offered) => [...offered][0] ?? false,
    });
    this.wss.on('connection', (client, req) => this.relay(client, req));
    await new Promise<void>((resolve) => this.httpServer.listen(0, '127.0.0.1', resolve));
    return this;
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const lane of this.lanes) lane.flush();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    for (const relay of this.relays.values()) relay.close();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.httpServer.closeAllConnections();
    await new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
  }

  private relay(client: WebSocket, req: http.IncomingMessage): void {
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const upstream = new WebSocket(`${this.options.target}${req.url ?? ''}`, protocols);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const pending: string[] = [];
    const toServer = new Lane(this, (frame) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(frame);
      else pending.push(frame);
    });
    // Rewriting may bind a UDP relay (asynchronous); a chain keeps the frames in order.
    let toClientChain = Promise.resolve();
    const toClient = new Lane(this, (frame) => {
      toClientChain = toClientChain
        .then(() => this.rewrite(frame))
        .then((out) => {
          if (client.readyState === WebSocket.OPEN) client.send(out);
        });
    });
    this.lanes.add(toServer).add(toClient);
    upstream.on('open', () => {
      for (const frame of pending.splice(0)) upstream.send(frame);
    });
    client.on('message', (data) => toServer.push(data.toString()));
    upstream.on('message', (data) => toClient.push(data.toString()));
    const end = (code: number, reason: Buffer) => {
      this.lanes.delete(toServer);
      this.lanes.delete(toClient);
      const valid = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006;
      for (const s of [client, upstream]) {
        if (s.readyState === WebSocket.OPEN) s.close(valid ? code : 1000, reason.toString());
      }
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  /** Points ICE candidates at jittered UDP relays when the media path has jitter. */
  private async rewrite(frame: string): Promise<string> {
    if (!this.options.mediaJitterMs || !frame.includes('iceCandidates')) return frame;
    const parsed = JSON.parse(frame) as {
      data?: { iceCandidates?: Array<{ ip?: string; address?: string; port: number; protocol: string }> };
    };
    const candidates = parsed.data?.iceCandidates;
    if (!candidates) return frame;
    const rewritten = [];
    for (const c of candidates.filter((c) => c.protocol === 'udp')) {
      const host = c.address ?? c.ip ?? '127.0.0.1';
      const key = `${host}:${c.port}`;
      let relay = this.relays.get(key);
      if (!relay) {
        relay = await UdpJitterRelay.bind(host, c.port, this.options.mediaJitterMs!, this.random);
        this.relays.set(key, relay);
      }
      rewritten.push({ ...c, ip: '127.0.0.1', address: '127.0.0.1', port: relay.port });
    }
    parsed.data!.iceCandidates = rewritten;
    return JSON.stringify(parsed);
  }
}

/** Forwards datagrams between one client and one server port, each after a random delay. */
class UdpJitterRelay {
  private client: { address: string; port: number } | undefined;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    serverHost: string,
    serverPort: number,
    jitterMs: number,
    random: () => number,
  ) {
    socket.on('message', (msg, from) => {
      const fromServer = from.address === serverHost && from.port === serverPort;
      if (!fromServer) this.client = { address: from.address, port: from.port };
      const to = fromServer ? this.client : { address: serverHost, port: serverPort };
      if (!to) return;
      setTimeout(() => {
        if (!this.closed) socket.send(msg, to.port, to.address, () => undefined);
      }, random() * jitterMs);
    });
  }

  static async bind(
    host: string,
    port: number,
    jitterMs: number,
    random: () => number,
  ): Promise<UdpJitterRelay> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpJitterRelay(socket, host, port, jitterMs, random);
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
