/**
 * Sheds excess joins before the LB's latency collapses: when a region dies, its clients rejoin the
 * survivors within the same second or two. Past a point every extra join admitted only makes every
 * join slower (and the survivors' own calls' signaling with them), so the LB answers the excess at
 * once with `503 overloaded` and `Retry-After`, which the SDK honours with jitter, spreading the herd
 * over time instead of queueing it here.
 *
 * A join is shed when either:
 * - `maxConcurrentJoins` joins are being answered already (a join waits on the table; a queue of them
 *   is latency for everyone), or
 * - the event loop is lagging: its delay, sampled with `perf_hooks.monitorEventLoopDelay` and judged
 *   every `sampleMs` as the window's mean (as @fastify/under-pressure does), exceeds
 *   `maxEventLoopDelayMs` (the process is CPU bound: relays of live calls share this loop, and they
 *   must keep their latency). The mean, not the maximum: one pause (a major GC, a burst of work) among
 *   prompt turns is not saturation and sheds nothing.
 *
 * The same policy as @fastify/under-pressure's event-loop-delay check, without the dependency, and
 * scoped to joins: health checks, pings and the signaling of calls already placed are never shed (a
 * busy region is not a dead one; shedding its health would move the herd on to the next region).
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoadShedderOptions {
  /** Joins answered at once before more are shed. */
  readonly maxConcurrentJoins: number;
  /** Event-loop delay (ms, the last window's mean) above which joins are shed. */
  readonly maxEventLoopDelayMs: number;
  /** `Retry-After` of a shed join, in whole seconds. */
  readonly retryAfterSeconds: number;
  /** How often the event-loop delay is judged. @default 250 */
  readonly sampleMs?: number;
}

export type ShedReason = 'concurrency' | 'event_loop_delay';

export class LoadShedder {
  private inFlight = 0;
  private loopDelayMs = 0;
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly counts: Record<ShedReason, number> = { concurrency: 0, event_loop_delay: 0 };

  constructor(private readonly options: LoadShedderOptions) {
    for (const key of ['maxConcurrentJoins', 'maxEventLoopDelayMs', 'retryAfterSeconds'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) {
        throw new Error(`${key} must be a positive integer; got ${options[key]}`);
      }
    }
  }

  get retryAfterSeconds(): number {
    return this.options.retryAfterSeconds;
  }

  /** Joins being answered now. */
  get joinsInFlight(): number {
    return this.inFlight;
  }

  /** The last window's mean event-loop delay, ms. */
  get eventLoopDelayMs(): number {
    return this.loopDelayMs;
  }

  /** Joins shed since start, by reason. */
  get shed(): Readonly<Record<ShedReason, number>> {
    return { ...this.counts };
  }

  start(): void {
    if (this.timer) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), this.options.sampleMs ?? 250).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.histogram?.disable();
  }

  /**
   * Admits a join (the caller must `release()` it when answered) or says why it is shed. A shed join
   * holds nothing.
   */
  admit(): ShedReason | undefined {
    const reason: ShedReason | undefined =
      this.inFlight >= this.options.maxConcurrentJoins
        ? 'concurrency'
        : this.loopDelayMs > this.options.maxEventLoopDelayMs
          ? 'event_loop_delay'
          : undefined;
    if (reason) this.counts[reason]++;
    else this.inFlight++;
    return reason;
  }

  release(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  private sample(): void {
    if (!this.histogram) return;
    // The histogram is in nanoseconds; the monitor's own resolution is its floor.
    // No turn at all in the window (NaN mean) means the loop was blocked for all of it.
    const meanMs = this.histogram.count > 0 ? this.histogram.mean / 1e6 : (this.options.sampleMs ?? 250);
    this.loopDelayMs = Math.max(0, meanMs - 10);
    this.histogram.reset();
  }
}
