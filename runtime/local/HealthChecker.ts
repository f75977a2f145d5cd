/**
 * Route 53 health checks for the local stack: each region's LB `/health` is probed every interval, and a
 * region's status flips only after `failureThreshold` consecutive results that disagree with it (in both
 * directions, as Route 53 does). A probe passes on a 2xx or 3xx answer within the timeout.
 *
 * A new check has no status yet ('unknown'); Route 53 treats such a check as healthy, so DNS keeps
 * answering the region. The first probe result sets the status directly, later ones count towards the
 * threshold.
 */
import * as http from 'node:http';

/** Route 53 waits 4 s for the connection and 2 s for the answer; one bound covers both here. */
export const DEFAULT_PROBE_TIMEOUT_MS = 4_000;
const MAX_TRANSITIONS = 200;

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

export interface HealthTarget {
  readonly region: string;
  /** e.g. http://127.0.1.1:8080/health */
  readonly url: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** Status code or error, for the status view. */
  readonly detail: string;
}

export type Probe = (target: HealthTarget, timeoutMs: number) => Promise<ProbeResult>;

export interface RegionHealth {
  readonly region: string;
  readonly url: string;
  readonly state: HealthState;
  /** True once probes have shown the region healthy. */
  readonly healthy: boolean;
  /** Whether DNS answers this region: healthy or not yet known. */
  readonly routable: boolean;
  /** Results in a row that disagree with the current state. */
  readonly streak: number;
  /** Probes completed so far. */
  readonly probes: number;
  readonly lastProbeAt?: number;
  readonly lastProbeOk?: boolean;
  readonly lastError?: string;
  readonly changedAt?: number;
}

export interface HealthTransition {
  readonly region: string;
  readonly from: HealthState;
  readonly to: HealthState;
  readonly at: number;
  readonly detail: string;
}

export interface HealthCheckerOptions {
  readonly targets: readonly HealthTarget[];
  readonly intervalMs: number;
  readonly failureThreshold: number;
  /** @default min(DEFAULT_PROBE_TIMEOUT_MS, intervalMs) but at least 1000 ms */
  readonly timeoutMs?: number;
  /** @default an HTTP GET of the target URL */
  readonly probe?: Probe;
  readonly now?: () => number;
  readonly onTransition?: (transition: HealthTransition) => void;
}

interface Check {
  readonly target: HealthTarget;
  state: HealthState;
  streak: number;
  probes: number;
  last?: ProbeResult & { at: number };
  changedAt?: number;
  timer: NodeJS.Timeout | null;
}

export class HealthChecker {
  private readonly checks = new Map<string, Check>();
  private readonly history: HealthTransition[] = [];
  private readonly probe: Probe;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private running = false;

  constructor(private readonly opts: HealthCheckerOptions) {
    if (!(opts.intervalMs > 0)) throw new Error(`intervalMs must be > 0, got ${opts.intervalMs}`);
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new Error(`failureThreshold must be an integer >= 1, got ${opts.failureThreshold}`);
    }
    this.probe = opts.probe ?? httpProbe;
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? Math.max(1_000, Math.min(DEFAULT_PROBE_TIMEOUT_MS, opts.intervalMs));
    for (const target of opts.targets) {
      this.checks.set(target.region, { target, state: 'unknown', streak: 0, probes: 0, timer: null });
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const check of this.checks.values()) void this.run(check);
  }

  stop(): void {
    this.running = false;
    for (const check of this.checks.values()) {
      if (check.timer) clearTimeout(check.timer);
      check.timer = null;
    }
  }

  isRoutable(region: string): boolean {
    return this.checks.get(region)?.state !== 'unhealthy';
  }

  status(): RegionHealth[] {
    return [...this.checks.values()].map((c) => ({
      region: c.target.region,
      url: c.target.url,
      state: c.state,
      healthy: c.state === 'healthy',
      routable: c.state !== 'unhealthy',
      streak: c.streak,
      probes: c.probes,
      lastProbeAt: c.last?.at,
      lastProbeOk: c.last?.ok,
      lastError: c.last && !c.last.ok ? c.last.detail : undefined,
      changedAt: c.changedAt,
    }));
  }

  /** Status changes, oldest first (the most recent MAX_TRANSITIONS). */
  transitions(): HealthTransition[] {
    return [...this.history];
  }

  /** One probe per interval, never two at once for a region: a slow probe delays the next one. */
  private async run(check: Check): Promise<void> {
    const startedAt = this.now();
    const result = await this.probe(check.target, this.timeoutMs).catch((err: Error): ProbeResult => ({
      ok: false,
      detail: err.message,
    }));
    if (!this.running) return;
    this.record(check, result);
    const wait = Math.max(0, startedAt + this.opts.intervalMs - this.now());
    check.timer = setTimeout(() => void this.run(check), wait);
  }

  private record(check: Check, result: ProbeResult): void {
    const at = this.now();
    check.last = { ...result, at };
    check.probes += 1;
    const observed: HealthState = result.ok ? 'healthy' : 'unhealthy';
    if (check.state === observed) {
      check.streak = 0;
      return;
    }
    check.streak += 1;
    if (check.state !== 'unknown' && check.streak < this.opts.failureThreshold) return;
    const transition: HealthTransition = {
      region: check.target.region,
      from: check.state,
      to: observed,
      at,
      detail: result.detail,
    };
    check.state = observed;
    check.streak = 0;
    check.changedAt = at;
    this.history.push(transition);
    if (this.history.length > MAX_TRANSITIONS) this.history.shift();
    this.opts.onTransition?.(transition);
  }
}

/** GET the URL on a fresh connection (as Route 53's checkers do); 2xx/3xx within the timeout passes. */
export const httpProbe: Probe = (target, timeoutMs) =>
  new Promise((resolve) => {
    const req = http.get(target.url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 400, detail: `HTTP ${status}` });
    });
    // `timeout` only covers idle sockets; the whole probe gets one deadline.
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, detail: err.message }));
    req.on('close', () => clearTimeout(deadline));
  });
