/**
 * One client's signaling WebSocket (usually relayed by the region's LB).
 *
 *   - The first request must be `join` with a media token for this room and this server; anything else
 *     before it is answered `not_joined`. A connection opened with a token in its URL joins with that
 *     token's peer only. A refused join closes the socket (4001, 4004 for a full room, 4000 when the
 *     server drains): the client must get a new token from the API either way.
 *   - Requests run one at a time in arrival order, so a client may pipeline (join, then create
 *     transports) without racing itself.
 *   - Each request is rate limited (the token bucket the LB's relay uses too); a client that keeps
 *     exceeding the rate is cut off (1008).
 *   - A ping every `pingIntervalMs`; no pong by the next one terminates the socket, and the peer (with
 *     everything it holds) closes with it. A client that does not read its socket is terminated too,
 *     rather than have the server buffer its notifications without end (SocketHealth, as at the LB).
 *   - When the server closes the peer (room moved, worker died, drain), the `rejoin` notification is
 *     flushed and the socket closes with 4000. A peer replaced by a newer session of its identity is
 *     closed with 4003 and no `rejoin`: that client's session is over.
 */
import type { WebSocket } from 'ws';
import type { PeerIdHolder } from '../PeerIdRegistry';
import { verifyMediaToken, type KeySet } from '../../protocol/tokens';
import type { SignalingLimits } from '../config';
import type { Logger } from '../logger';
import type { MediaServer } from '../MediaServer';
import type { MediaMetrics } from '../MediaMetrics';
import type { Peer, PeerCloseReason } from '../Peer';
import {
  ProtocolError,
  SIGNALING_CLOSE,
  parseRequest,
  type Method,
  type ProtocolErrorCode,
  type ProtocolErrorWithId,
  type RequestData,
  type ResponseFrame,
} from '../../protocol/signaling';
import type { Room } from '../Room';
import { toProtocolError } from './errors';
import { requestHandlers } from './requestHandlers';
import { SocketHealth } from '../../protocol/SocketHealth';
import { TokenBucket } from '../../protocol/TokenBucket';

/** A client that does not read its socket must not make the server buffer notifications without end. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Requests waiting behind the one in progress; a client that queues more is not waiting for answers. */
const MAX_QUEUED_REQUESTS = 64;

/** How a refused join ends the connection: the client needs a new token (and maybe a new server). */
const JOIN_REFUSAL_CLOSE: Partial<Record<ProtocolErrorCode, number>> = {
  unauthorized: SIGNALING_CLOSE.unauthorized,
  server_draining: SIGNALING_CLOSE.rejoin,
  room_full: SIGNALING_CLOSE.roomFull,
};

/** Who the connection is, as the HTTP side saw it before the upgrade. */
export interface SessionConnection {
  /** The TCP connection the socket runs on: it holds the token's peer id until it closes. */
  readonly holder: PeerIdHolder;
  /** The peer id of the token in the URL, already verified and claimed for `holder`. */
  readonly urlPeerId?: string;
}

/** What a session needs of the server it runs on; one per server, shared by its sessions. */
export interface SessionServices {
  readonly server: MediaServer;
  /** Keys the `join` request's media token is verified with. */
  readonly mediaTokenKeys: KeySet;
  /** This server's id and region: a token must be bound to the id; the join answer carries both. */
  readonly serverId: string;
  readonly region: string;
  readonly limits: SignalingLimits;
  readonly metrics: MediaMetrics;
  readonly logger: Logger;
}

export interface SignalingSessionOptions extends SessionServices {
  readonly socket: WebSocket;
  /** The room of the URL the client connected to: the only room its token may join. */
  readonly roomId: string;
  readonly connection: SessionConnection;
}

export class SignalingSession {
  private readonly socket: WebSocket;
  private readonly roomId: string;
  private readonly server: MediaServer;
  private readonly metrics: MediaMetrics;
  private joined?: { peer: Peer; room: Room };
  private joining = false;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private rateViolations = 0;
  private ended = false;
  private readonly bucket: TokenBucket;
  private readonly health: SocketHealth;
  private readonly joinTimer: NodeJS.Timeout;
  private logger: Logger;

  constructor(private readonly opts: SignalingSessionOptions) {
    const { socket, roomId, limits } = opts;
    this.socket = socket;
    this.roomId = roomId;
    this.server = opts.server;
    this.metrics = opts.metrics;
    this.logger = opts.logger.child({ room: roomId });
    this.bucket = new TokenBucket({ perSecond: limits.messagesPerSecond, burst: limits.messageBurst });
    socket.on('message', (data, isBinary) => this.onMessage(isBinary ? null : data.toString('utf8')));
    // ws emits 'close' after 'error'; the close handler does the cleanup.
    socket.on('error', (err) => this.logger.debug({ err: err.message }, 'signaling socket error'));
    socket.on('close', () => this.onSocketClosed());
    this.health = new SocketHealth(socket, {
      pingIntervalMs: limits.pingIntervalMs,
      onDead: () => {
        this.logger.info('signaling client missed a pong; dropping it');
        socket.terminate();
      },
      maxBufferedBytes: MAX_BUFFERED_BYTES,
      onSlowReader: () => {
        this.logger.warn('client is not reading its socket; dropping it');
        socket.terminate();
      },
    });
    this.joinTimer = setTimeout(() => {
      if (!this.joined) this.closeSocket(SIGNALING_CLOSE.joinTimeout, 'no join in time');
    }, limits.joinTimeoutMs);
  }

  private onMessage(raw: string | null): void {
    if (this.ended) return;
    if (!this.bucket.take()) {
      this.rateViolations++;
      this.send({
        id: null,
        ok: false,
        error: { code: 'rate_limited', message: 'too many requests; slow down' },
      });
      if (this.rateViolations >= this.opts.limits.maxRateViolations) {
        this.closeSocket(SIGNALING_CLOSE.policy, 'request rate exceeded');
      }
      return;
    }
    this.rateViolations = 0;
    if (raw === null) {
      this.send({ id: null, ok: false, error: { code: 'bad_request', message: 'frames must be JSON text' } });
      return;
    }
    if (this.queued >= MAX_QUEUED_REQUESTS) {
      this.send({
        id: null,
        ok: false,
        error: { code: 'rate_limited', message: 'too many requests in flight' },
      });
      return;
    }
    this.queued++;
    this.queue = this.queue.then(() => this.handle(raw)).finally(() => this.queued--);
  }

  private async handle(raw: string): Promise<void> {
    if (this.ended) return;
    let id: number | null = null;
    let method: Method | 'invalid' = 'invalid';
    try {
      const request = parseRequest(raw);
      id = request.id;
      method = request.method;
      const data = await this.dispatch(request.method, request.data);
      this.send({ id, ok: true, data });
      this.metrics.requests.inc({ method, outcome: 'ok' });
      if (method === 'leave') this.closeSocket(SIGNALING_CLOSE.normal, 'left');
    } catch (err) {
      const { error, internal } = toProtocolError(err);
      const requestId = id ?? (err as ProtocolErrorWithId).requestId ?? null;
      if (internal) this.logger.error({ err, method }, 'signaling request failed');
      else
        this.logger.debug({ method, code: error.code, message: error.message }, 'signaling request refused');
      this.send({ id: requestId, ok: false, error: { code: error.code, message: error.message } });
      this.metrics.requests.inc({ method, outcome: error.code });
      const closeCode = method === 'join' ? JOIN_REFUSAL_CLOSE[error.code] : undefined;
      if (closeCode !== undefined) {
        this.metrics.connections.inc({ outcome: error.code });
        this.closeSocket(closeCode, error.code);
      }
    }
  }

  private async dispatch(method: Method, data: RequestData<Method>): Promise<unknown> {
    if (method === 'join') return this.join(data as RequestData<'join'>);
    if (method === 'ping' && !this.joined) return { serverTime: Date.now() };
    if (!this.joined) throw new ProtocolError('not_joined', `join the room before "${method}"`);
    const handler = requestHandlers[method] as (
      ctx: { peer: Peer; room: Room },
      data: unknown,
    ) => Promise<unknown>;
    return handler(this.joined, data);
  }

  private async join({ token, displayName }: RequestData<'join'>): Promise<unknown> {
    if (this.joined || this.joining)
      throw new ProtocolError('already_joined', 'this connection already joined');
    this.joining = true;
    try {
      const claims = await verifyMediaToken(this.opts.mediaTokenKeys, token, {
        roomId: this.roomId,
        serverId: this.opts.serverId,
      });
      const { urlPeerId, holder } = this.opts.connection;
      if (urlPeerId !== undefined && claims.sub !== urlPeerId) {
        throw new ProtocolError(
          'unauthorized',
          `this connection was opened for peer "${urlPeerId}"; its join token is for peer "${claims.sub}"`,
        );
      }
      const { peer, room } = await this.server.join(claims, displayName, holder, (frame) => this.send(frame));
      if (this.ended) {
        // The socket went away while the room was being created.
        peer.close('disconnected');
        throw new ProtocolError('not_joined', 'the connection closed during join');
      }
      this.joined = { peer, room };
      this.logger = peer.logger;
      clearTimeout(this.joinTimer);
      peer.on('close', (reason) => this.onPeerClosed(reason));
      this.metrics.connections.inc({ outcome: 'joined' });
      return {
        peerId: peer.id,
        roomId: this.roomId,
        serverId: this.opts.serverId,
        region: this.opts.region,
        routerRtpCapabilities: room.router.rtpCapabilities,
      };
    } finally {
      this.joining = false;
    }
  }

  private onPeerClosed(reason: PeerCloseReason): void {
    // `left` closes after the leave response is sent (handle); `disconnected` has no socket left.
    if (reason === 'room_closed') this.closeSocket(SIGNALING_CLOSE.rejoin, 'rejoin');
    else if (reason === 'replaced') this.closeSocket(SIGNALING_CLOSE.replaced, 'replaced');
  }

  private send(frame: ResponseFrame | object): void {
    // Refused when the socket is not open, or terminated (onSlowReader) when the client stops reading.
    if (!this.ended) this.health.send(JSON.stringify(frame));
  }

  /** Graceful close: queued frames (a `rejoin`, a last response) are sent first. */
  private closeSocket(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(code, reason);
  }

  private onSocketClosed(): void {
    if (this.ended) return;
    this.ended = true;
    this.health.stop();
    clearTimeout(this.joinTimer);
    this.joined?.peer.close('disconnected');
  }
}
