/**
 * Protocol-level stand-ins for the LB and a media server, on real sockets, so the session's rejoin
 * logic can be driven through every failure it handles (socket closed, pings unanswered, `rejoin`
 * notices, unreachable edges) deterministically. The real LB and media server are exercised together
 * with the SDK by the end-to-end tests; these fakes only speak the wire contracts (the join API and
 * runtime/protocol/signaling.ts), with transport parameters that libwebrtc accepts but never connects to.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { testFakeParameters } from 'mediasoup-client';
import WebSocket, { WebSocketServer } from 'ws';
import type {
  Method,
  NotificationName,
  Notifications,
  ServerProducerInfo,
} from '../../../runtime/protocol/signaling';
import { SIGNALING_SUBPROTOCOL, tokenFromSubprotocols } from '../../../runtime/protocol/subprotocol';
import { json, startHttpServer, type TestHttpServer } from './httpServers';

export interface RecordedRequest {
  readonly method: Method;
  readonly data: Record<string, unknown>;
  readonly peerId: string;
}

/** ICE/DTLS parameters of a transport nobody listens to (port 9 is "discard"). */
function transportParameters(id: string) {
  return {
    id,
    iceParameters: {
      iceLite: true,
      usernameFragment: 'fakeufrag0000000',
      password: 'fakepassword00000000000000000000',
    },
    iceCandidates: [
      {
        foundation: 'udpcandidate',
        ip: '127.0.0.1',
        address: '127.0.0.1',
        port: 9,
        priority: 1078862079,
        protocol: 'udp',
        type: 'host',
      },
    ],
    dtlsParameters: {
      role: 'auto',
      fingerprints: [
        {
          algorithm: 'sha-256',
          value:
            'A9:F4:E0:D2:74:D3:0F:D9:CA:A5:2F:9F:7F:47:FA:F0:C4:72:DD:73:49:D0:3B:14:90:20:51:30:1B:90:8E:71',
        },
      ],
    },
  };
}

export class FakeMediaServer {
  readonly requests: RecordedRequest[] = [];
  /** Every accepted upgrade: its URL and the media token it presented. */
  readonly upgrades: Array<{ url: string; token: string | undefined }> = [];
  /** Producers in the room, including ones seeded for "other peers". */
  readonly producers: ServerProducerInfo[] = [];
  /** When true, requests (pings included) go unanswered: a hung server behind a live relay. */
  silent = false;
  /** Joins to refuse with close code 4001, as for an expired or replayed media token. */
  refuseJoins = 0;
  private readonly sockets = new Map<WebSocket, string>();
  private httpServer!: http.Server;
  private wss!: WebSocketServer;
  private port = 0;
  private counter = 0;

  constructor(
    readonly serverId: string,
    readonly region: string,
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Listens (again, on the same port after `kill`, like a restarted process). */
  async start(): Promise<this> {
    this.httpServer = http.createServer();
    this.wss = new WebSocketServer({
      server: this.httpServer,
      // As the LB does: select the signaling protocol, never echo the token.
      handleProtocols: (offered) => (offered.has(SIGNALING_SUBPROTOCOL) ? SIGNALING_SUBPROTOCOL : false),
    });
    this.wss.on('connection', (ws, req) => {
      this.upgrades.push({
        url: req.url ?? '',
        token: tokenFromSubprotocols(req.headers['sec-websocket-protocol']),
      });
      this.accept(ws);
    });
    await new Promise<void>((resolve) => this.httpServer.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.httpServer.address() as AddressInfo).port;
    return this;
  }

  /** Drops every socket and stops listening: connections are refused from now on. */
  async kill(): Promise<void> {
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.wss.close(() => this.httpServer.close(() => resolve())));
    this.httpServer.closeAllConnections();
  }

  notifyAll<N extends NotificationName>(name: N, data: Notifications[N]): void {
    for (const ws of this.sockets.keys()) ws.send(JSON.stringify({ notification: name, data }));
  }

  requestsOf(method: Method): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method);
  }

  /**
   * A producer of a peer that is not a client under test: by default one of a peer joined to another
   * region's leg (piped in), as a cascading media server reports it.
   */
  seedRemoteProducer(
    kind: 'audio' | 'video' = 'video',
    peer: { peerId: string; identity: string; region: string } = {
      peerId: 'remote-peer',
      identity: 'carol',
      region: 'ap-southeast-1',
    },
  ): ServerProducerInfo {
    const producer = {
      producerId: `${this.serverId}-remote-${++this.counter}`,
      ...peer,
      kind,
      paused: false,
    };
    this.producers.push(producer);
    return producer;
  }

  private accept(ws: WebSocket): void {
    const peerId = `${this.serverId}-peer-${++this.counter}`;
    this.sockets.set(ws, peerId);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (raw) => {
      const { id, method, data } = JSON.parse(raw.toString()) as {
        id: number;
        method: Method;
        data: Record<string, unknown>;
      };
      this.requests.push({ method, data, peerId });
      if (this.silent) return;
      if (method === 'join' && this.refuseJoins > 0) {
        this.refuseJoins--;
        ws.close(4001, 'media token already used');
        return;
      }
      const answer = this.answer(method, data, peerId);
      ws.send(JSON.stringify({ id, ok: true, data: answer }));
    });
  }

  private answer(method: Method, data: Record<string, unknown>, peerId: string): unknown {
    switch (method) {
      case 'join':
        return {
          peerId,
          roomId: 'room',
          serverId: this.serverId,
          region: this.region,
          routerRtpCapabilities: JSON.parse(
            JSON.stringify(testFakeParameters.generateRouterRtpCapabilities()),
          ),
        };
      case 'createWebRtcTransport':
        return transportParameters(`${this.serverId}-t${++this.counter}`);
      case 'produce': {
        const producer = {
          producerId: `${this.serverId}-p${++this.counter}`,
          peerId,
          identity: peerId,
          region: this.region,
          kind: data.kind as 'video',
          paused: false,
        };
        this.producers.push(producer);
        return { producerId: producer.producerId };
      }
      case 'listProducers':
        return { producers: this.producers.filter((p) => p.peerId !== peerId) };
      case 'consume': {
        const producer = this.producers.find((p) => p.producerId === data.producerId)!;
        const params = JSON.parse(
          JSON.stringify(testFakeParameters.generateConsumerRemoteParameters({ codecMimeType: 'video/VP8' })),
        ) as { rtpParameters: { mid?: string; encodings: Array<{ ssrc: number; rtx?: { ssrc: number } }> } };
        // Every stream needs its own SSRCs, as every real producer has.
        const ssrc = 10_000_000 + ++this.counter * 10;
        params.rtpParameters.encodings = [{ ssrc, rtx: { ssrc: ssrc + 1 } }];
        // And its own MID, as a real server gives each consumer: concurrent consumes must not collide.
        params.rtpParameters.mid = `m${ssrc}`;
        return {
          consumerId: `${this.serverId}-c${++this.counter}`,
          producerId: producer.producerId,
          peerId: producer.peerId,
          kind: producer.kind,
          rtpParameters: params.rtpParameters,
        };
      }
      case 'ping':
        return { serverTime: Date.now() };
      default:
        return {};
    }
  }
}

export interface JoinCall {
  readonly auth: string | undefined;
  readonly body: { rtt?: Record<string, number>; exclude?: { serverIds?: string[]; regions?: string[] } };
}

/**
 * The join API: answers the first listed server that the body does not exclude (by id or region),
 * 503 `no_capacity` when none is left, 401 for any token but the valid one.
 */
export class FakeLb {
  readonly joins: JoinCall[] = [];
  /**
   * Servers in placement order; `{ serverId, region, url }` entries may point at nothing. `fallbackUrl`
   * is the same server in the other name family (the answer's `fallbackSignalingUrl`).
   */
  servers: Array<{ serverId: string; region: string; url: string; fallbackUrl?: string }> = [];
  /** The `alternates` of every answer, as given (tests put malformed entries here too). */
  alternates: unknown[] = [];
  /**
   * Mints the answer's media token, for real media servers; the join token then only has to start
   * with `validToken` (each participant has its own). @default a placeholder token
   */
  mintMediaToken: ((serverId: string, room: string, joinToken: string) => Promise<string>) | undefined;
  /** Holds a join's answer this long (a slow placement). @default none */
  answerDelayMs: (call: JoinCall) => number = () => 0;
  private server!: TestHttpServer;

  constructor(readonly validToken = 'join-token') {}

  get url(): string {
    return this.server.url;
  }

  async start(): Promise<this> {
    this.server = await startHttpServer(async (req, body, res) => {
      if (req.method === 'GET' && req.url?.startsWith('/v1/ping')) return json(res, 200, { ok: true });
      const match = /^\/v1\/rooms\/([^/]+)\/join$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match)
        return json(res, 404, { error: { code: 'not_found', message: req.url } });
      const call: JoinCall = {
        auth: req.headers.authorization,
        body: body ? (JSON.parse(body) as JoinCall['body']) : {},
      };
      this.joins.push(call);
      const joinToken = call.auth?.replace(/^Bearer /, '') ?? '';
      const valid = this.mintMediaToken
        ? joinToken.startsWith(this.validToken)
        : joinToken === this.validToken;
      if (!valid) {
        return json(res, 401, { error: { code: 'token_invalid', message: 'the join token is not valid' } });
      }
      const excluded = call.body.exclude ?? {};
      const server = this.servers.find(
        (s) => !excluded.serverIds?.includes(s.serverId) && !excluded.regions?.includes(s.region),
      );
      if (!server) return json(res, 503, { error: { code: 'no_capacity', message: 'no server left' } });
      const room = decodeURIComponent(match[1]!);
      const delayMs = this.answerDelayMs(call);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const mediaToken = this.mintMediaToken
        ? await this.mintMediaToken(server.serverId, room, joinToken)
        : `media-${server.serverId}-${this.joins.length}`;
      return json(res, 200, {
        room,
        region: server.region,
        serverId: server.serverId,
        signalingUrl: `${server.url}/v1/rooms/${encodeURIComponent(room)}/signal`,
        ...(server.fallbackUrl
          ? { fallbackSignalingUrl: `${server.fallbackUrl}/v1/rooms/${encodeURIComponent(room)}/signal` }
          : {}),
        mediaToken,
        alternates: this.alternates,
        expiresAt: Date.now() + 120_000,
      });
    });
    return this;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
