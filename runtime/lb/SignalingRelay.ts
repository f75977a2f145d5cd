/**
 * One signaling relay: a client's WebSocket on the LB edge, bridged to the room's media server.
 *
 * Policy:
 *   - Frames pass through untouched both ways (text stays text). Client frames that arrive before the
 *     media server accepted are kept, up to `pendingFrames`, and flushed in order.
 *   - Either side closing closes the other, with a code the other side can act on: a media server's own
 *     code passes through; a lost or unreachable media server becomes 1014 (bad gateway), which the
 *     client SDK treats as "rejoin elsewhere"; a policy violation by the client becomes 1008.
 *   - Both legs are pinged every `keepaliveMs` and dropped after one missed pong (SocketHealth), so a
 *     dead client frees its media-server session, and a dead media server (a region gone dark) is
 *     noticed by the client within two periods rather than at the TCP timeout. A client that does not
 *     read its socket is dropped rather than have the LB buffer the media server's frames for it.
 *   - Client frames are rate limited by a token bucket (the media server's session uses the same one);
 *     the frame size limit is the WebSocket server's `maxPayload` (the ws library answers 1009 and we
 *     close the upstream leg).
 */
import { EventEmitter } from 'node:events';
import WebSocket, { type RawData } from 'ws';
import { SIGNALING_CLOSE } from '../protocol/signaling';
import { SocketHealth } from '../protocol/SocketHealth';
import { TokenBucket } from '../protocol/TokenBucket';

const {
  goingAway: CLOSE_GOING_AWAY,
  policy: CLOSE_POLICY,
  badGateway: CLOSE_BAD_GATEWAY,
  unauthorized: CLOSE_UNAUTHORIZED,
} = SIGNALING_CLOSE;

/** A client not reading its socket must not make the LB buffer the media server's notifications forever. */
const MAX_CLIENT_BUFFERED_BYTES = 1024 * 1024;
/** Close reasons are limited to 123 bytes by RFC 6455. */
const MAX_REASON_BYTES = 123;

export type RelayEndReason =
  | 'client_closed'
  | 'client_timeout'
  | 'client_too_slow'
  | 'rate_limited'
  | 'pending_overflow'
  | 'upstream_closed'
  | 'upstream_unreachable'
  | 'upstream_refused'
  | 'upstream_timeout'
  | 'shutdown';

export interface SignalingRelayOptions {
  /** The client's socket, accepted by the LB's WebSocket server. */
  readonly client: WebSocket;
  readonly upstreamUrl: string;
  /** Headers for the media server (who the client is, for its logs). */
  readonly upstreamHeaders?: Record<string, string>;
  readonly maxPayloadBytes: number;
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  readonly keepaliveMs: number;
  readonly pendingFrames: number;
  readonly connectTimeoutMs: number;
}

interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

type LegAction = CloseFrame | 'terminate' | null;

export interface SignalingRelayEvents {
  close: [reason: RelayEndReason, detail: string];
}

/** What the client is told when the relay ends on the media server's side or the client's own. */
const CLIENT_WENT_AWAY: CloseFrame = { code: CLOSE_GOING_AWAY, reason: 'client went away' };

export class SignalingRelay extends EventEmitter<SignalingRelayEvents> {
  private readonly client: WebSocket;
  private readonly upstream: WebSocket;
  private readonly pending: Array<{ data: RawData; isBinary: boolean }> = [];
  private readonly clientHealth: SocketHealth;
  private readonly upstreamHealth: SocketHealth;
  private readonly connectTimer: NodeJS.Timeout;
  private readonly bucket: TokenBucket;
  private ended = false;
  private upstreamOpened = false;

  constructor(private readonly opts: SignalingRelayOptions) {
    super();
    const { client } = opts;
    this.client = client;
    this.bucket = new TokenBucket({ perSecond: opts.messagesPerSecond, burst: opts.messageBurst });
    this.upstream = new WebSocket(opts.upstreamUrl, {
      maxPayload: opts.maxPayloadBytes,
      headers: opts.upstreamHeaders,
      handshakeTimeout: opts.connectTimeoutMs,
      // ws offers permessage-deflate by default. Frames pass through untouched; a media server that
      // accepted would cost every relay zlib contexts (hundreds of KiB) to undo and redo what it forwards.
      perMessageDeflate: false,
    });

    client.on('message', (data, isBinary) => this.fromClient(data, isBinary));
    // ws emits 'close' after every 'error'; the close handler does the work.
    client.on('error', () => {});
    client.on('close', (code) =>
      this.end('client_closed', `client closed with ${code}`, null, {
        code: sendable(code) ? code : CLOSE_GOING_AWAY,
        reason: 'client went away',
      }),
    );

    this.upstream.on('open', () => this.flushPending());
    this.upstream.on('message', (data, isBinary) => this.fromUpstream(data, isBinary));
    this.upstream.on('error', () => {});
    this.upstream.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      // A refused token (401, 403, or 409: already used) needs a new token from the API, not another
      // server: close as the media server would refuse a join. Another 4xx is the server refusing this
      // peer (say, the room closed): rejoining elsewhere may help, retrying the same socket will not.
      const tokenRefused = status === 401 || status === 403 || status === 409;
      this.end(
        'upstream_refused',
        `media server answered HTTP ${status}`,
        tokenRefused
          ? { code: CLOSE_UNAUTHORIZED, reason: `media server refused the media token (${status})` }
          : status >= 400 && status < 500
            ? { code: CLOSE_POLICY, reason: `media server refused the connection (${status})` }
            : { code: CLOSE_BAD_GATEWAY, reason: `media server unavailable (${status})` },
        'terminate',
      );
    });
    this.upstream.on('close', (code, reason) => {
      if (this.upstreamOpened) {
        this.end(
          'upstream_closed',
          `media server closed with ${code}`,
          {
            code: sendable(code) ? code : CLOSE_BAD_GATEWAY,
            reason: sendable(code) ? reason.toString() : 'media server connection lost',
          },
          null,
        );
      } else {
        this.end(
          'upstream_unreachable',
          `media server unreachable (${code})`,
          {
            code: CLOSE_BAD_GATEWAY,
            reason: 'media server unreachable',
          },
          null,
        );
      }
    });

    this.connectTimer = setTimeout(
      () =>
        this.end(
          'upstream_timeout',
          'media server did not accept in time',
          {
            code: CLOSE_BAD_GATEWAY,
            reason: 'media server did not answer',
          },
          'terminate',
        ),
      opts.connectTimeoutMs,
    ).unref();
    // Created in this order, the two share a period and fire in it client first: a tick that finds
    // both legs dead blames the client. The upstream leg is not judged while it connects: the connect
    // timer covers that.
    this.clientHealth = new SocketHealth(client, {
      pingIntervalMs: opts.keepaliveMs,
      onDead: () => this.end('client_timeout', 'client missed a pong', 'terminate', CLIENT_WENT_AWAY),
      maxBufferedBytes: MAX_CLIENT_BUFFERED_BYTES,
      onSlowReader: () =>
        this.end(
          'client_too_slow',
          'client is not reading its socket',
          { code: CLOSE_POLICY, reason: 'client is not reading its socket' },
          CLIENT_WENT_AWAY,
        ),
    });
    this.upstreamHealth = new SocketHealth(this.upstream, {
      pingIntervalMs: opts.keepaliveMs,
      onDead: () =>
        this.end(
          'upstream_timeout',
          'media server missed a pong',
          { code: CLOSE_BAD_GATEWAY, reason: 'media server stopped answering' },
          'terminate',
        ),
    });
  }

  get open(): boolean {
    return !this.ended;
  }

  /** Closes both legs (LB shutdown). Idempotent. */
  close(reason: string): void {
    this.end('shutdown', reason, { code: CLOSE_GOING_AWAY, reason }, { code: CLOSE_GOING_AWAY, reason });
  }

  private flushPending(): void {
    this.upstreamOpened = true;
    clearTimeout(this.connectTimer);
    for (const frame of this.pending.splice(0)) this.upstream.send(frame.data, { binary: frame.isBinary });
  }

  private fromClient(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    if (!this.bucket.take()) {
      this.end(
        'rate_limited',
        'client exceeded the message rate',
        {
          code: CLOSE_POLICY,
          reason: `more than ${this.opts.messagesPerSecond} messages per second`,
        },
        CLIENT_WENT_AWAY,
      );
      return;
    }
    if (this.upstream.readyState === WebSocket.OPEN) {
      this.upstream.send(data, { binary: isBinary });
      return;
    }
    if (this.pending.length >= this.opts.pendingFrames) {
      this.end(
        'pending_overflow',
        'client sent too much before the media server accepted',
        {
          code: CLOSE_POLICY,
          reason: 'too many messages before the media server answered',
        },
        'terminate',
      );
      return;
    }
    this.pending.push({ data, isBinary });
  }

  private fromUpstream(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    this.clientHealth.send(data, { binary: isBinary });
  }

  private end(reason: RelayEndReason, detail: string, client: LegAction, upstream: LegAction): void {
    if (this.ended) return;
    this.ended = true;
    this.clientHealth.stop();
    this.upstreamHealth.stop();
    clearTimeout(this.connectTimer);
    this.pending.length = 0;
    closeLeg(this.client, client);
    closeLeg(this.upstream, upstream);
    this.emit('close', reason, detail);
  }
}

function closeLeg(ws: WebSocket, action: LegAction): void {
  if (action === null || ws.readyState === WebSocket.CLOSED) return;
  if (action === 'terminate' || ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
    return;
  }
  if (ws.readyState === WebSocket.OPEN) ws.close(action.code, truncateReason(action.reason));
}

/** Codes an endpoint may put in a close frame (1005/1006/1015 are reserved for local reporting). */
function sendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

function truncateReason(reason: string): string {
  const buf = Buffer.from(reason);
  if (buf.length <= MAX_REASON_BYTES) return reason;
  // Cut on a character boundary so the frame stays valid UTF-8.
  let end = MAX_REASON_BYTES;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString();
}
