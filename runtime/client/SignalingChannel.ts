/**
 * One signaling connection to one media server (through its region's LB), speaking
 * runtime/protocol/signaling.ts: numbered requests with one response each, and notifications.
 *
 * A server counts as lost when the socket closes, when an app-level `ping` goes unanswered for
 * `pongTimeoutMs` (a relay can keep a socket open to a dead server, and TCP alone notices that only
 * after minutes), or when any request goes unanswered for `requestTimeoutMs`. Loss is reported once,
 * as the `lost` event; an intentional `close()` reports nothing.
 */
import {
  SIGNALING_CLOSE,
  type Method,
  type NotificationName,
  type Notifications,
  type RequestData,
  type ResponseData,
} from '../protocol/signaling';
import { signalingSubprotocols } from '../protocol/subprotocol';
import { TypedEmitter } from './TypedEmitter';
import {
  type ChannelLossReason,
  SignalingLostError,
  SignalingOpenError,
  SignalingRequestError,
} from './errors';
import type { SignalingSocket, SocketFactory } from './platform';
import { type Timer, abortReason, unrefTimer } from './timers';

/** Close code the client uses for an intentional close (RFC 6455 normal closure). */
const CLOSE_NORMAL = SIGNALING_CLOSE.normal;

/** How long the channel waits for the socket, for an answer, and between pings. */
export interface SignalingTimeouts {
  readonly openTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly pingMs: number;
  readonly pongTimeoutMs: number;
}

export interface SignalingChannelOptions extends SignalingTimeouts {
  readonly openSocket: SocketFactory;
  /** The join answer's `signalingUrl`. */
  readonly url: string;
  /** Presented as a subprotocol, never in the URL (see subprotocol.ts). */
  readonly mediaToken: string;
  /** Aborting it while the socket opens closes the socket and rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export type NotificationEvent = {
  [N in NotificationName]: { name: N; data: Notifications[N] };
}[NotificationName];

export interface SignalingChannelEvents {
  notification: NotificationEvent;
  lost: { reason: ChannelLossReason; detail: string; closeCode?: number };
  /** A frame the client could not make sense of (a server bug, not a reason to drop the call). */
  malformed: { detail: string };
  /** An app-level ping left (the failure detector times the answer with its own clock). */
  pingSent: Record<string, never>;
  /** The outstanding ping was answered. */
  pongReceived: Record<string, never>;
}

interface Pending {
  readonly method: Method;
  readonly resolve: (data: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: Timer;
}

export class SignalingChannel extends TypedEmitter<SignalingChannelEvents> {
  private socket!: SignalingSocket;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private pingTimer: Timer | undefined;
  private pingInFlight = false;
  private state: 'opening' | 'open' | 'closed' = 'opening';

  private constructor(
    private readonly options: SignalingTimeouts,
    /** The URL this channel was opened to (the answer's `signalingUrl` or its fallback). */
    readonly url: string,
  ) {
    super();
  }

  /** Opens `url`, presenting `mediaToken` as a subprotocol (never in the URL: see subprotocol.ts). */
  static open(options: SignalingChannelOptions): Promise<SignalingChannel> {
    const { openSocket, url, mediaToken, signal, ...timeouts } = options;
    const channel = new SignalingChannel(timeouts, url);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const fail = (err: Error) => {
        clearTimeout(openTimer);
        signal?.removeEventListener('abort', onAbort);
        channel.state = 'closed';
        reject(err);
      };
      const onAbort = () => {
        channel.socket.close(CLOSE_NORMAL, 'cancelled');
        fail(abortReason(signal!));
      };
      const openTimer = setTimeout(() => {
        channel.socket.close(CLOSE_NORMAL, 'open timeout');
        fail(new SignalingOpenError(url, `no connection within ${options.openTimeoutMs} ms`));
      }, options.openTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      channel.socket = openSocket(url, signalingSubprotocols(mediaToken), {
        onOpen: () => {
          if (channel.state !== 'opening') return;
          clearTimeout(openTimer);
          signal?.removeEventListener('abort', onAbort);
          channel.state = 'open';
          channel.startPing();
          resolve(channel);
        },
        onMessage: (text) => channel.onFrame(text),
        onClose: (code, reason) => {
          if (channel.state === 'opening')
            fail(new SignalingOpenError(url, `closed with ${code}${reason ? ` (${reason})` : ''}`, code));
          else
            channel.lose(
              'signaling_closed',
              `socket closed with ${code}${reason ? ` (${reason})` : ''}`,
              code,
            );
        },
      });
    });
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  request<M extends Method>(method: M, data: RequestData<M>): Promise<ResponseData[M]> {
    if (this.state !== 'open')
      return Promise.reject(new SignalingLostError('signaling_closed', 'the signaling socket is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const err = new SignalingLostError(
          'request_timeout',
          `${method} unanswered for ${this.options.requestTimeoutMs} ms`,
        );
        reject(err);
        this.lose('request_timeout', err.message);
      }, this.options.requestTimeoutMs);
      this.pending.set(id, { method, resolve: resolve as (d: unknown) => void, reject, timer });
      this.socket.send(JSON.stringify({ id, method, data }));
    });
  }

  /** Intentional close: no `lost` event; pending requests fail. */
  close(reason = 'client closed'): void {
    if (this.state === 'closed') return;
    this.shutDown(new SignalingLostError('signaling_closed', reason));
    this.socket.close(CLOSE_NORMAL, reason);
  }

  private startPing(): void {
    this.pingTimer = unrefTimer(setInterval(() => this.ping(), this.options.pingMs));
  }

  /**
   * Sends a ping now unless one is already out: the failure detector asks for one the moment media
   * stalls, so the signaling evidence does not wait for the next period.
   */
  pingNow(): void {
    this.ping();
  }

  private ping(): void {
    if (this.pingInFlight || this.state !== 'open') return;
    this.pingInFlight = true;
    this.emit('pingSent', {});
    const pongTimer = setTimeout(() => {
      this.lose('ping_timeout', `ping unanswered for ${this.options.pongTimeoutMs} ms`);
      this.socket.close(CLOSE_NORMAL, 'ping timeout');
    }, this.options.pongTimeoutMs);
    this.request('ping', {})
      .then(() => this.emit('pongReceived', {}))
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(pongTimer);
        this.pingInFlight = false;
      });
  }

  private onFrame(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
      if (frame === null || typeof frame !== 'object') throw new Error('not an object');
    } catch {
      this.emit('malformed', { detail: `frame is not a JSON object: ${text.slice(0, 80)}` });
      return;
    }
    if (typeof frame.notification === 'string') {
      this.emit('notification', { name: frame.notification, data: frame.data } as NotificationEvent);
      return;
    }
    const pending = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    if (!pending) {
      const error = frame.error as { code?: string; message?: string } | undefined;
      this.emit('malformed', {
        detail: error
          ? `unmatched error ${error.code}: ${error.message}`
          : `response to unknown request ${String(frame.id)}`,
      });
      return;
    }
    this.pending.delete(frame.id as number);
    clearTimeout(pending.timer);
    if (frame.ok === true) {
      pending.resolve(frame.data ?? {});
    } else {
      const error = (frame.error ?? {}) as { code?: string; message?: string };
      pending.reject(
        new SignalingRequestError(
          pending.method,
          error.code ?? 'internal',
          error.message ?? 'request failed',
        ),
      );
    }
  }

  private lose(reason: ChannelLossReason, detail: string, closeCode?: number): void {
    if (this.state === 'closed') return;
    this.shutDown(new SignalingLostError(reason, detail, closeCode));
    this.emit('lost', { reason, detail, ...(closeCode !== undefined ? { closeCode } : {}) });
  }

  private shutDown(err: SignalingLostError): void {
    this.state = 'closed';
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
    this.pending.clear();
  }
}
