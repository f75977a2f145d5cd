/**
 * The API client's fallback policy:
 *
 * 1. Every call starts at the URL that served the last call (initially the primary, `apiUrls[0]`),
 *    then tries the others in configured order: primary, backup, then ranked region URLs if an RTT
 *    election supplied them.
 * 2. It moves on at a network error, a per-attempt timeout, a 5xx or a malformed 2xx: those say the
 *    path or the service is unwell. It never moves on at a 4xx: the request is wrong and would be wrong
 *    everywhere, so the server's `{ error: { code, message } }` surfaces as an ApiError.
 * 3. It hedges: a URL silent for `hedgeMs` gets the next URL started beside it, and the first usable
 *    answer wins, so a blackholed primary costs one hedge delay, not a whole attempt timeout.
 * 4. It sticks to the URL that answered, so a dead primary costs one timeout once, not on every call.
 * 5. While stuck on a non-primary URL it re-probes the primary (`GET /v1/ping`) in the background and
 *    moves back when it answers: the primary name carries Route 53's latency routing, the backup does
 *    not.
 *
 * Each call emits `served` with the URL that answered and every attempt, for chaos measurements.
 */
import { TypedEmitter } from './emitter';
import { ApiError, ApiUnavailableError, type Attempt } from './errors';
import { attemptHttp } from './httpAttempt';
import type { TimeoutsConfig } from './config';
import type { HttpTransport } from './platform';
import { type Timer, unrefTimer } from './timers';

export interface ServedEvent {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Base URL that answered. */
  readonly url: string;
  readonly status: number;
  /** Every attempt of this call, the answering one last. */
  readonly attempts: readonly Attempt[];
}

export interface SwitchedEvent {
  readonly from: string;
  readonly to: string;
  readonly reason: 'fallback' | 'primary_recovered';
}

export interface ApiClientEvents {
  served: ServedEvent;
  switched: SwitchedEvent;
}

export interface ApiCallOptions {
  readonly method?: 'GET' | 'POST';
  readonly body?: unknown;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly signal?: AbortSignal;
}

export interface ApiAnswer<T> {
  readonly data: T;
  readonly url: string;
}

export const PING_PATH = '/v1/ping';

export class ApiClient extends TypedEmitter<ApiClientEvents> {
  private readonly apiUrls: readonly string[];
  private extraUrls: readonly string[] = [];
  private current: string;
  private reprobeTimer: Timer | undefined;
  private reprobing = false;
  private closed = false;
  private readonly timeouts: Pick<TimeoutsConfig, 'attemptMs' | 'hedgeMs' | 'primaryReprobeMs'>;

  constructor(
    private readonly http: HttpTransport,
    config: {
      readonly apiUrls: readonly string[];
      readonly timeouts: Pick<TimeoutsConfig, 'attemptMs' | 'hedgeMs' | 'primaryReprobeMs'>;
    },
  ) {
    super();
    this.timeouts = config.timeouts;
    this.apiUrls = [...new Set(config.apiUrls)];
    this.current = this.apiUrls[0]!;
  }

  get primaryUrl(): string {
    return this.apiUrls[0]!;
  }

  /** The URL the next call starts with. */
  get currentUrl(): string {
    return this.current;
  }

  /** The whole chain in fallback order. */
  get urls(): readonly string[] {
    return [...new Set([...this.apiUrls, ...this.extraUrls])];
  }

  /** Appends URLs after the configured ones (the RTT election's ranked region URLs). */
  setExtraUrls(urls: readonly string[]): void {
    this.extraUrls = [...urls];
    if (!this.urls.includes(this.current)) this.switchTo(this.primaryUrl, 'fallback');
  }

  async call<T>(path: string, options: ApiCallOptions = {}): Promise<ApiAnswer<T>> {
    const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const order = [this.current, ...this.urls.filter((u) => u !== this.current)];
    const attempts: Attempt[] = [];
    const { url, result, parsed } = await this.race(
      order,
      (url, signal) =>
        attemptHttp(
          this.http,
          { method, url: `${url}${path}`, headers, body },
          this.timeouts.attemptMs,
          signal,
        ).then((result) => {
          const parsed =
            result.outcome === 'ok' || result.outcome === 'client_error' ? parseJson(result.body) : undefined;
          const outcome = result.outcome === 'ok' && parsed === undefined ? 'bad_answer' : result.outcome;
          attempts.push({
            url,
            outcome,
            status: result.status,
            detail: outcome === 'bad_answer' && !result.detail ? 'answer is not JSON' : result.detail,
            elapsedMs: result.elapsedMs,
          });
          return { url, result: { ...result, outcome }, parsed };
        }),
      options.signal,
    ).catch((err: unknown) => {
      if (err instanceof NoUrlAnswered) throw new ApiUnavailableError(attempts);
      throw err;
    });
    // A 4xx proves the URL works as well as a 2xx does: stick to it either way.
    if (url !== this.current) this.switchTo(url, 'fallback');
    this.emit('served', { method, path, url, status: result.status!, attempts: [...attempts] });
    if (result.outcome === 'client_error') throw toApiError(result.status!, parsed, url);
    return { data: parsed as T, url };
  }

  /**
   * Tries `order` in turn. The next URL starts when the current attempt fails, or, hedging, when it
   * has not answered within `hedgeMs` (it keeps running: a slow answer still counts). The first usable
   * answer (2xx or 4xx) wins and the attempts still running are abandoned, so a blackholed URL costs
   * one hedge delay instead of a whole attempt timeout.
   */
  private race<R extends { result: { outcome: string } }>(
    order: readonly string[],
    attempt: (url: string, signal: AbortSignal) => Promise<R>,
    callerSignal?: AbortSignal,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const abandon = new AbortController();
      const onCallerAbort = () => abandon.abort(callerSignal!.reason);
      callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
      let next = 0;
      let running = 0;
      let settled = false;
      let hedgeTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(hedgeTimer);
        callerSignal?.removeEventListener('abort', onCallerAbort);
        abandon.abort(new Error('another URL answered'));
        fn();
      };
      const launch = () => {
        clearTimeout(hedgeTimer);
        if (settled || next >= order.length) return;
        const url = order[next++]!;
        running++;
        if (next < order.length) hedgeTimer = setTimeout(launch, this.timeouts.hedgeMs);
        attempt(url, abandon.signal).then(
          (r) => {
            running--;
            if (r.result.outcome === 'ok' || r.result.outcome === 'client_error')
              return finish(() => resolve(r));
            if (next < order.length) launch();
            else if (running === 0) finish(() => reject(new NoUrlAnswered()));
          },
          (err: unknown) => {
            running--;
            // Abandoned after another URL won, or the caller gave up: either way, the race is over.
            if (callerSignal?.aborted) finish(() => reject(err));
          },
        );
      };
      launch();
    });
  }

  /** Stops the background re-probe. Calls still work (a closed client just no longer probes). */
  close(): void {
    this.closed = true;
    this.stopReprobe();
  }

  private switchTo(url: string, reason: SwitchedEvent['reason']): void {
    const from = this.current;
    this.current = url;
    if (url === this.primaryUrl) this.stopReprobe();
    else this.startReprobe();
    if (from !== url) this.emit('switched', { from, to: url, reason });
  }

  private startReprobe(): void {
    if (this.reprobeTimer || this.closed) return;
    this.reprobeTimer = unrefTimer(
      setInterval(() => void this.reprobePrimary(), this.timeouts.primaryReprobeMs),
    );
  }

  private stopReprobe(): void {
    if (this.reprobeTimer) clearInterval(this.reprobeTimer);
    this.reprobeTimer = undefined;
  }

  private async reprobePrimary(): Promise<void> {
    // One probe at a time: a blackholed primary must not pile up probes when attemptMs > the interval.
    if (this.reprobing) return;
    this.reprobing = true;
    try {
      const result = await attemptHttp(
        this.http,
        { method: 'GET', url: `${this.primaryUrl}${PING_PATH}`, headers: { accept: 'application/json' } },
        this.timeouts.attemptMs,
      );
      if (result.outcome === 'ok' && !this.closed && this.current !== this.primaryUrl) {
        this.switchTo(this.primaryUrl, 'primary_recovered');
      }
    } finally {
      this.reprobing = false;
    }
  }
}

class NoUrlAnswered extends Error {}

function parseJson(body: string | undefined): unknown {
  if (body === undefined) return undefined;
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function toApiError(status: number, body: unknown, url: string): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : 'the API rejected the request';
  return new ApiError(status, code, message, url);
}
