/**
 * RTT election: which region is closest, measured rather than assumed.
 *
 * Each region's `GET /v1/ping` is probed `samples` times (regions in parallel, samples in sequence so
 * they do not queue behind each other) and regions are ranked by median RTT; a region that never
 * answered ranks last and is left out of the report. The ranking is sent with the join (`rtt`) so the
 * LB can order alternates and place a new room near its first peer, and it extends the API fallback
 * chain with direct region URLs.
 *
 * The current region is re-probed every `recheckMs`; when it fails or its RTT grows past
 * `degradedFactor` x its elected RTT (and `degradedMarginMs`), the whole election runs again, so the
 * next (re)join reports fresh numbers. Re-election never moves a live call by itself: all peers of a
 * room share one server, and moving one peer for a few ms would split the room.
 */
import type { RttElectionConfig } from './config';
import { TypedEmitter } from './TypedEmitter';
import type { HttpTransport } from './platform';
import { attemptHttp } from './httpAttempt';
import { PING_PATH } from './ApiClient';
import { type Timer, median, unrefTimer } from './timers';

/** The LB rejects RTTs above this; a region this slow is as good as unreachable anyway. */
const MAX_REPORTED_RTT_MS = 60_000;

export interface RegionRtt {
  readonly region: string;
  readonly url: string;
  /** Median of the successful samples, or null when no probe answered. */
  readonly rttMs: number | null;
  readonly samples: readonly number[];
  readonly failures: number;
}

export interface RttElectionEvents {
  elected: { ranking: readonly RegionRtt[]; reason: 'initial' | 'degraded' | 'requested' };
  degraded: { region: string; rttMs: number | null; electedRttMs: number | null };
}

export interface RttElectionOptions extends RttElectionConfig {
  readonly http: HttpTransport;
  /** Region name → that region's API base URL (its `/v1/ping` is probed). */
  readonly regionUrls: Readonly<Record<string, string>>;
  /** One probe; a region silent for longer counts as a failed sample. */
  readonly probeTimeoutMs: number;
}

export class RttElection extends TypedEmitter<RttElectionEvents> {
  private current: readonly RegionRtt[] = [];
  private running: Promise<readonly RegionRtt[]> | undefined;
  private watched: string | undefined;
  private watchTimer: Timer | undefined;
  private checking = false;
  private closed = false;

  private readonly http: HttpTransport;
  private readonly regionUrls: Readonly<Record<string, string>>;
  private readonly config: RttElectionConfig;
  private readonly probeTimeoutMs: number;

  constructor(options: RttElectionOptions) {
    super();
    const { http, regionUrls, probeTimeoutMs, ...config } = options;
    this.http = http;
    this.regionUrls = regionUrls;
    this.config = config;
    this.probeTimeoutMs = probeTimeoutMs;
  }

  /** Regions best first; empty before the first election. */
  get ranking(): readonly RegionRtt[] {
    return this.current;
  }

  /** `{ region: ms }` for the join body, or undefined when nothing has been measured. */
  rttReport(): Record<string, number> | undefined {
    const reachable = this.current.filter((r) => r.rttMs !== null);
    if (reachable.length === 0) return undefined;
    return Object.fromEntries(
      reachable.map((r) => [r.region, Math.min(MAX_REPORTED_RTT_MS, Math.max(0, Math.round(r.rttMs!)))]),
    );
  }

  /** Runs an election; concurrent callers share the one in flight. */
  elect(reason: RttElectionEvents['elected']['reason'] = 'requested'): Promise<readonly RegionRtt[]> {
    this.running ??= this.runElection(reason).finally(() => (this.running = undefined));
    return this.running;
  }

  /** Re-probes `region` every `recheckMs` (the session's current region); undefined stops watching. */
  watch(region: string | undefined): void {
    this.watched = region;
    if (region === undefined || this.closed) {
      if (this.watchTimer) clearInterval(this.watchTimer);
      this.watchTimer = undefined;
      return;
    }
    this.watchTimer ??= unrefTimer(setInterval(() => void this.recheck(), this.config.recheckMs));
  }

  close(): void {
    this.closed = true;
    this.watch(undefined);
  }

  private async runElection(reason: RttElectionEvents['elected']['reason']): Promise<readonly RegionRtt[]> {
    const results = await Promise.all(
      Object.entries(this.regionUrls).map(([region, url]) =>
        this.probeRegion(region, url, this.config.samples),
      ),
    );
    this.current = results.sort((a, b) => (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity));
    this.emit('elected', { ranking: this.current, reason });
    return this.current;
  }

  private async probeRegion(region: string, url: string, samples: number): Promise<RegionRtt> {
    const rtts: number[] = [];
    let failures = 0;
    for (let i = 0; i < samples; i++) {
      const result = await attemptHttp(
        this.http,
        { method: 'GET', url: `${url}${PING_PATH}` },
        this.probeTimeoutMs,
      );
      if (result.outcome === 'ok') rtts.push(result.elapsedMs);
      else failures++;
    }
    return { region, url, rttMs: rtts.length ? median(rtts) : null, samples: rtts, failures };
  }

  private async recheck(): Promise<void> {
    const region = this.watched;
    const url = region ? this.regionUrls[region] : undefined;
    if (!region || !url || this.checking || this.running) return;
    this.checking = true;
    try {
      const probe = await this.probeRegion(region, url, this.config.samples);
      const elected = this.current.find((r) => r.region === region)?.rttMs ?? null;
      const slow =
        probe.rttMs !== null &&
        elected !== null &&
        probe.rttMs > elected * this.config.degradedFactor &&
        probe.rttMs > elected + this.config.degradedMarginMs;
      if (!this.closed && (probe.rttMs === null || slow)) {
        this.emit('degraded', { region, rttMs: probe.rttMs, electedRttMs: elected });
        await this.elect('degraded');
      }
    } finally {
      this.checking = false;
    }
  }
}
