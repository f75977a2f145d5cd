/**
 * What the SDK needs from its environment, and the browser implementation of it. Everything that
 * touches `node:` modules lives in nodePlatform.ts, so a browser bundle of the SDK never pulls them in.
 */
import { Device } from 'mediasoup-client';

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Aborts the request (per-attempt timeout or caller cancellation). */
  readonly signal: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
  /** The `Retry-After` header, when the server sent one (a shed join, a rate limit). */
  readonly retryAfter?: string;
  /** The `X-Region` header: the region whose LB answered (every LB answer names it). */
  readonly region?: string;
}

/** Performs one HTTP exchange; rejects on network errors and aborts, resolves for any status. */
export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

export interface SocketHandlers {
  onOpen(): void;
  onMessage(text: string): void;
  /** Called once, whether the socket closed cleanly, failed to open or broke. */
  onClose(code: number, reason: string): void;
}

/** The part of a WebSocket the signaling channel uses. */
export interface SignalingSocket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/** Opens a WebSocket offering `protocols` (the signaling protocol and the media token, see subprotocol.ts). */
export type SocketFactory = (
  url: string,
  protocols: readonly string[],
  handlers: SocketHandlers,
) => SignalingSocket;

export interface Platform {
  readonly http: HttpTransport;
  readonly openSocket: SocketFactory;
  /** A fresh mediasoup-client Device (one per media server: a Device loads one router's capabilities). */
  readonly createDevice: () => Promise<Device>;
  /** Releases pooled connections and caches. */
  close(): void;
}

/** Browser globals: fetch, WebSocket, and mediasoup-client's own browser detection. */
export function browserPlatform(): Platform {
  return {
    http: async ({ method, url, headers, body, signal }) => {
      const response = await fetch(url, { method, headers, body, signal, cache: 'no-store' });
      const retryAfter = response.headers.get('retry-after') ?? undefined;
      const region = response.headers.get('x-region') ?? undefined;
      return {
        status: response.status,
        body: await response.text(),
        ...(retryAfter ? { retryAfter } : {}),
        ...(region ? { region } : {}),
      };
    },
    openSocket: (url, protocols, handlers) => {
      const socket = new WebSocket(url, [...protocols]);
      let closed = false;
      const closeOnce = (code: number, reason: string) => {
        if (closed) return;
        closed = true;
        handlers.onClose(code, reason);
      };
      socket.addEventListener('open', () => handlers.onOpen());
      socket.addEventListener('message', (ev) => {
        if (typeof ev.data === 'string') handlers.onMessage(ev.data);
      });
      // Browsers hide the cause of a failed socket; a close event with 1006 follows the error event.
      socket.addEventListener('close', (ev) => closeOnce(ev.code, ev.reason));
      return {
        send: (text) => socket.send(text),
        close: (code, reason) => socket.close(code, reason),
      };
    },
    createDevice: () => Device.factory(),
    close: () => undefined,
  };
}
