/**
 * Errors the SDK surfaces. A 4xx from the API is the caller's fault and carries the server's
 * `{ error: { code, message } }`; running out of URLs lists what happened at each one, so a support
 * ticket shows whether DNS, the network or the service failed.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The base URL that answered. */
    readonly url: string,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ApiError';
  }

  /** Worth retrying later with the same request (rate limited, request timeout). */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429;
  }
}

export type AttemptOutcome =
  'ok' | 'client_error' | 'server_error' | 'timeout' | 'network_error' | 'bad_answer';

export interface Attempt {
  readonly url: string;
  readonly outcome: AttemptOutcome;
  readonly status?: number;
  readonly detail?: string;
  readonly elapsedMs: number;
  /** The server asked to be retried after this long (`Retry-After`): it sheds load. */
  readonly retryAfterMs?: number;
  /** The region whose LB answered, when it said (`X-Region`). */
  readonly region?: string;
}

export class ApiUnavailableError extends Error {
  constructor(readonly attempts: readonly Attempt[]) {
    super(
      `no API URL answered: ${attempts
        .map(
          (a) => `${a.url} ${a.outcome}${a.status ? ` ${a.status}` : ''}${a.detail ? ` (${a.detail})` : ''}`,
        )
        .join('; ')}`,
    );
    this.name = 'ApiUnavailableError';
  }

  /** The longest `Retry-After` any URL answered with; undefined when none did. */
  get retryAfterMs(): number | undefined {
    const asked = this.attempts.map((a) => a.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    return asked.length > 0 ? Math.max(...asked) : undefined;
  }
}

/** The media server answered a signaling request with `ok: false`. */
export class SignalingRequestError extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
    message: string,
  ) {
    super(`${method}: ${code}: ${message}`);
    this.name = 'SignalingRequestError';
  }
}

export type ChannelLossReason = 'signaling_closed' | 'ping_timeout' | 'request_timeout';

/** The signaling socket is gone (closed, or a request or ping went unanswered). */
export class SignalingLostError extends Error {
  constructor(
    readonly reason: ChannelLossReason,
    message: string,
    /** WebSocket close code when the socket closed (4001: the server refused the media token). */
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = 'SignalingLostError';
  }
}

export class SessionClosedError extends Error {
  constructor() {
    super('the session is closed');
    this.name = 'SessionClosedError';
  }
}

/** The signaling socket could not be opened at all: the region's edge looks unreachable. */
export class SignalingOpenError extends Error {
  constructor(
    readonly url: string,
    readonly detail: string,
    /** The close code when the socket closed while opening; undefined when it timed out. */
    readonly closeCode?: number,
  ) {
    super(`could not open the signaling socket: ${detail}`);
    this.name = 'SignalingOpenError';
  }
}
