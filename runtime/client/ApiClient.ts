/**
 * The API client's fallback policy:
 *
 * 1. Every call starts at the URL that served the last call (initially the primary, `apiUrls[0]`),
 *    then tries the rest of the chain in order: the configured `apiUrls` (primary, backup), the region
 *    URLs ranked by the RTT election if `regionUrls` are configured, then the alternates of the latest
 *    join answer: region URLs the platform itself recommends, so a client configured with the two
 *    names only still has somewhere to go when both fail (their DNS is broken, or they point at a dead
 *    region). Learned URLs never outrank configured ones. A call may name regions to avoid (a rejoin
 *    excluded them): their URLs are asked last, and so is every name whose last answer came from one
 *    of them. Every LB answer names its region (`X-Region`), so the client knows which region stands
 *    behind `api` (latency-routed) or `api-backup` (weighted) right now.
 * 2. Each learned list replaces the previous one, so the chain stays bounded: configured URLs, one URL
 *    per configured region, at most three alternates (joinApi.ts checks and caps them). The URL that
 *    answered last stays first until it fails, even when the newest list no longer names it (an answer
 *    never lists the room's own region, often the region whose URL just answered).
 * 3. It moves on at a network error, a per-attempt timeout, a 5xx or a malformed 2xx: those say the
 *    path or the service is unwell. It never moves on at a 4xx: the request is wrong and would be wrong
 *    everywhere, so the server's `{ error: { code, message } }` surfaces as an ApiError.
 * 4. It hedges: a URL silent for `hedgeMs` gets the next URL started beside it, and the first usable
 *    answer wins, so a blackholed primary costs one hedge delay, not a whole attempt timeout. A call
 *    may name regions it suspects (a switch away from a server that went silent): a URL that leads
 *    there keeps its place but holds nothing back, the next URL starts beside it at once. So a frozen
 *    region costs no hedge delay at all, and a region that is fine (one server failed, its LB answers)
 *    still serves the call if it answers first.
 * 5. It sticks to the URL that answered, so a dead primary costs one timeout once, not on every call.
 * 6. While stuck on a non-primary URL it re-probes the primary (`GET /v1/ping`) in the background and
 *    moves back when it answers: the primary name carries Route 53's latency routing, the others do
 *    not.
 *
 * Each call emits `served` with the URL that answered and every attempt, for chaos measurements.
 */
import { TypedEmitter } from './TypedEmitter';
import { ApiError, ApiUnavailableError, type Attempt } from './errors';
import { attemptHttp } from './httpAttempt';
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
  /** Regions whose URLs are asked last, after every other URL of the chain. */
  readonly avoidRegions?: readonly string[];
  /** Regions whose URLs do not hold the next URL back: it starts beside them at once. */
  readonly suspectRegions?: readonly string[];
  /** Hedging delay for this call (a switch away from a suspected server hedges sooner). @default hedgeMs */
  readonly hedgeMs?: number;
}

export interface ApiClientOptions {
  readonly http: HttpTransport;
  /** The configured fallback chain: the primary name first, then the backup and any other name. */
  readonly apiUrls: readonly string[];
  /** One HTTP attempt against one URL. */
  readonly attemptMs: number;
  /** Silence of one URL before the next one is started beside it. */
  readonly hedgeMs: number;
  /** Interval of the primary re-probe while a non-primary URL serves. */
  readonly primaryReprobeMs: number;
}

/** A region's own API base URL: its LB answers joins like the primary name does. */
export interface RegionUrl {
  readonly region: string;
  readonly url: string;
}

/** One URL of the chain; `region` is known for region URLs, not for the configured names. */
interface ChainEntry {
  readonly url: string;
  readonly region?: string;
}

export interface ApiAnswer<T> {
  readonly data: T;
  readonly url: string;
}

export const PING_PATH = '/v1/ping';

export class ApiClient extends TypedEmitter<ApiClientEvents> {
  private readonly apiUrls: readonly string[];
  private rankedRegions: readonly RegionUrl[] = [];
  private alternates: readonly RegionUrl[] = [];
  private current: ChainEntry;
  /** Which region's LB last answered through each URL (`X-Region`). */
  private readonly answeredBy = new Map<string, string>();
  private reprobeTimer: Timer | undefined;
  private reprobing = false;
  private closed = false;
  private readonly http: HttpTransport;
  private readonly timeouts: Pick<ApiClientOptions, 'attemptMs' | 'hedgeMs' | 'primaryReprobeMs'>;

  constructor(options: ApiClientOptions) {
    super();
    const { http, apiUrls, attemptMs, hedgeMs, primaryReprobeMs } = options;
    this.http = http;
    this.timeouts = { attemptMs, hedgeMs, primaryReprobeMs };
    this.apiUrls = [...new Set(apiUrls)];
    this.current = { url: this.apiUrls[0]! };
  }

  get primaryUrl(): string {
    return this.apiUrls[0]!;
  }

  /** The URL the next call starts with. */
  get currentUrl(): string {
    return this.current.url;
  }

  /** The chain in fallback order, before a call puts the current URL first and avoided regions last. */
  get urls(): readonly string[] {
    return this.chain().map((e) => e.url);
  }

  /** The RTT election's region URLs, best first; they follow the configured URLs. */
  setRankedRegions(ranking: readonly RegionUrl[]): void {
    this.rankedRegions = ranking.map(({ region, url }) => ({ region, url }));
  }

  /** The latest join answer's alternates (validated base URLs); they follow the ranked region URLs. */
  setAlternates(alternates: readonly { region: string; apiUrl: string }[]): void {
    this.alternates = alternates.map(({ region, apiUrl }) => ({ region, url: apiUrl }));
  }

  async call<T>(path: string, options: ApiCallOptions = {}): Promise<ApiAnswer<T>> {
    const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const order = this.callOrder(options.avoidRegions ?? []);
    // How long each URL may stay silent before the next one starts: a suspected region's, not at all.
    const hedgeMs = options.hedgeMs ?? this.timeouts.hedgeMs;
    const suspects = options.suspectRegions ?? [];
    const holdMs = new Map(order.map((e) => [e.url, this.leadsTo(e, suspects) ? 0 : hedgeMs]));
    const attempts: Attempt[] = [];
    const { url, result, parsed } = await this.race(
      order.map((e) => e.url),
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
          if (result.region !== undefined) this.answeredBy.set(url, result.region);
          attempts.push({
            url,
            outcome,
            status: result.status,
            detail: outcome === 'bad_answer' && !result.detail ? 'answer is not JSON' : result.detail,
            elapsedMs: result.elapsedMs,
            ...(result.retryAfterMs !== undefined ? { retryAfterMs: result.retryAfterMs } : {}),
            ...(result.region !== undefined ? { region: result.region } : {}),
          });
          return { url, result: { ...result, outcome }, parsed };
        }),
      options.signal,
      (url) => holdMs.get(url) ?? hedgeMs,
    ).catch((err: unknown) => {
      if (err instanceof NoUrlAnswered) throw new ApiUnavailableError(attempts);
      throw err;
    });
    const answered = order.find((e) => e.url === url)!;
    // A 4xx proves the URL works as well as a 2xx does: stick to it either way.
    if (answered.url !== this.current.url) this.switchTo(answered, 'fallback');
    this.emit('served', { method, path, url, status: result.status!, attempts: [...attempts] });
    if (result.outcome === 'client_error') throw toApiError(result.status!, parsed, url);
    return { data: parsed as T, url };
  }

  /** Configured URLs, then ranked region URLs, then alternates, each URL once (its first place wins). */
  private chain(): ChainEntry[] {
    const configured: ChainEntry[] = this.apiUrls.map((url) => ({ url }));
    const seen = new Set<string>();
    const chain: ChainEntry[] = [];
    for (const entry of [...configured, ...this.rankedRegions, ...this.alternates]) {
      if (seen.has(entry.url)) continue;
      seen.add(entry.url);
      chain.push(entry);
    }
    return chain;
  }

  /**
   * The current URL, then the chain; URLs of avoided regions, and URLs whose last answer came from one,
   * move to the end, current or not.
   */
  private callOrder(avoidRegions: readonly string[]): ChainEntry[] {
    const order = [this.current, ...this.chain().filter((e) => e.url !== this.current.url)];
    const avoided = (e: ChainEntry) => this.leadsTo(e, avoidRegions);
    return [...order.filter((e) => !avoided(e)), ...order.filter(avoided)];
  }

  /** Whether `entry` is a URL of one of `regions`, or its last answer came from one. */
  private leadsTo(entry: ChainEntry, regions: readonly string[]): boolean {
    const behind = this.answeredBy.get(entry.url);
    return (
      (entry.region !== undefined && regions.includes(entry.region)) ||
      (behind !== undefined && regions.includes(behind))
    );
  }

  /**
   * Tries `order` in turn. The next URL starts when the current attempt fails, or, hedging, when it
   * has not answered within `hedgeMs(url)` (it keeps running: a slow answer still counts). The first
   * usable answer (2xx or 4xx) wins and the attempts still running are abandoned, so a blackholed URL
   * costs one hedge delay instead of a whole attempt timeout.
   */
  private race<R extends { result: { outcome: string } }>(
    order: readonly string[],
    attempt: (url: string, signal: AbortSignal) => Promise<R>,
    callerSignal: AbortSignal | undefined,
    hedgeMs: (url: string) => number,
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
        if (next < order.length) hedgeTimer = setTimeout(launch, hedgeMs(url));
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

  private switchTo(to: ChainEntry, reason: SwitchedEvent['reason']): void {
    const from = this.current.url;
    this.current = to;
    if (to.url === this.primaryUrl) this.stopReprobe();
    else this.startReprobe();
    if (from !== to.url) this.emit('switched', { from, to: to.url, reason });
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
      if (result.region !== undefined) this.answeredBy.set(this.primaryUrl, result.region);
      if (result.outcome === 'ok' && !this.closed && this.current.url !== this.primaryUrl) {
        this.switchTo({ url: this.primaryUrl }, 'primary_recovered');
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
