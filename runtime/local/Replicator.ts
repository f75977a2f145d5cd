/**
 * Global-table replication between the regions' replicas: every local write is delivered to every other
 * region after `lagMs`. Whether it lands is the target replica's call (last-writer-wins per item), so
 * delivery order does not matter and a paused link may hold writes for any time.
 *
 * A paused region is partitioned: it neither sends nor receives. Its own writes and the writes meant for
 * it stay queued and are delivered when it resumes; nothing is dropped.
 */
import type { ApplyOutcome, ReplicatedWrite } from './RegionReplica';

/** A failed apply (a replica closing under it) is retried this often before it is counted as dropped. */
const MAX_APPLY_ATTEMPTS = 5;
const RETRY_MIN_DELAY_MS = 50;
/** Lag percentiles cover the most recent deliveries only, so they follow a changed lag. */
const LAG_SAMPLES = 500;
/**
 * Applies in flight per target region. A replica runs applies and its own clients' writes one at a
 * time (RegionReplica.ts), so a healed partition's backlog delivered all at once would queue a local
 * write behind hundreds of applies, for seconds: the region's own traffic would time out just because
 * another region came back, which real global tables do not do. A few at a time keep local writes a
 * few applies away from running.
 */
const MAX_APPLIES_IN_FLIGHT = 4;

export interface ReplicationTarget {
  readonly name: string;
  apply(write: ReplicatedWrite): Promise<ApplyOutcome>;
}

export interface RegionReplicationStats {
  readonly paused: boolean;
  /** Writes waiting to be applied in this region (including those being applied). */
  readonly inboundQueue: number;
  /** This region's writes not yet applied in some other region, counted once per target. */
  readonly outboundQueue: number;
  readonly applied: number;
  /** Delivered but older than what the region already held. */
  readonly superseded: number;
  readonly dropped: number;
  /** Write time to delivery, over recent deliveries; null before the first. */
  readonly lagP50Ms: number | null;
  readonly lagMaxMs: number | null;
}

interface Pending {
  readonly write: ReplicatedWrite;
  readonly dueAt: number;
  readonly attempts: number;
}

interface TargetState {
  readonly target: ReplicationTarget;
  queue: Pending[];
  inFlight: Pending[];
  applied: number;
  superseded: number;
  dropped: number;
  lagSamples: number[];
}

export interface ReplicatorOptions {
  readonly targets: readonly ReplicationTarget[];
  readonly lagMs: number;
  readonly now?: () => number;
  readonly onError?: (err: Error, target: string, write: ReplicatedWrite) => void;
}

export class Replicator {
  private readonly states = new Map<string, TargetState>();
  private readonly paused = new Set<string>();
  private readonly now: () => number;
  private lag: number;
  private timer: NodeJS.Timeout | null = null;
  private timerDueAt = Infinity;
  private closed = false;
  private readonly settling = new Set<Promise<void>>();

  constructor(private readonly opts: ReplicatorOptions) {
    this.now = opts.now ?? Date.now;
    this.lag = opts.lagMs;
    for (const target of opts.targets) {
      this.states.set(target.name, {
        target,
        queue: [],
        inFlight: [],
        applied: 0,
        superseded: 0,
        dropped: 0,
        lagSamples: [],
      });
    }
  }

  get lagMs(): number {
    return this.lag;
  }

  /** Queues a region's local write for every other region. */
  publish(write: ReplicatedWrite): void {
    if (this.closed) return;
    const dueAt = this.now() + this.lag;
    for (const [name, state] of this.states) {
      if (name !== write.origin) state.queue.push({ write, dueAt, attempts: 0 });
    }
    this.wakeBy(dueAt);
  }

  pause(region: string): void {
    this.requireRegion(region);
    this.paused.add(region);
  }

  resume(region: string): void {
    this.requireRegion(region);
    this.paused.delete(region);
    this.deliverDue();
  }

  isPaused(region: string): boolean {
    return this.paused.has(region);
  }

  /** Changes the lag for queued writes too: each is due `lagMs` after it was written. */
  setLag(lagMs: number): void {
    if (!Number.isFinite(lagMs) || lagMs < 0) throw new Error(`lagMs must be a number >= 0, got ${lagMs}`);
    const delta = lagMs - this.lag;
    this.lag = lagMs;
    for (const state of this.states.values())
      state.queue = state.queue.map((p) => ({ ...p, dueAt: p.dueAt + delta }));
    this.deliverDue();
  }

  stats(): Record<string, RegionReplicationStats> {
    const result: Record<string, RegionReplicationStats> = {};
    for (const [name, state] of this.states) {
      const outbound = [...this.states.values()].reduce(
        (n, s) => n + [...s.queue, ...s.inFlight].filter((p) => p.write.origin === name).length,
        0,
      );
      const sorted = [...state.lagSamples].sort((a, b) => a - b);
      result[name] = {
        paused: this.paused.has(name),
        inboundQueue: state.queue.length + state.inFlight.length,
        outboundQueue: outbound,
        applied: state.applied,
        superseded: state.superseded,
        dropped: state.dropped,
        lagP50Ms: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : null,
        lagMaxMs: sorted.length ? sorted[sorted.length - 1]! : null,
      };
    }
    return result;
  }

  /** Resolves once every delivery in flight has settled; queued writes are discarded. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all(this.settling);
  }

  /** Starts every due delivery whose link is up, then sleeps until the next one is due. */
  private deliverDue(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerDueAt = Infinity;
    if (this.closed) return;
    const now = this.now();
    let nextDueAt = Infinity;
    for (const [name, state] of this.states) {
      if (this.paused.has(name)) continue;
      const waiting: Pending[] = [];
      for (const pending of state.queue) {
        if (this.paused.has(pending.write.origin)) {
          waiting.push(pending);
        } else if (pending.dueAt <= now) {
          // Held back by the in-flight bound: the next settled apply runs this pass again.
          if (state.inFlight.length < MAX_APPLIES_IN_FLIGHT) this.deliver(state, pending);
          else waiting.push(pending);
        } else {
          waiting.push(pending);
          nextDueAt = Math.min(nextDueAt, pending.dueAt);
        }
      }
      state.queue = waiting;
    }
    if (nextDueAt < Infinity) {
      this.timerDueAt = nextDueAt;
      this.timer = setTimeout(() => this.deliverDue(), nextDueAt - now);
    }
  }

  /** Makes sure a delivery pass runs no later than `dueAt`. */
  private wakeBy(dueAt: number): void {
    if (!this.timer || dueAt < this.timerDueAt) this.deliverDue();
  }

  private deliver(state: TargetState, pending: Pending): void {
    state.inFlight.push(pending);
    const done = state.target
      .apply(pending.write)
      .then(
        (outcome) => {
          if (outcome === 'applied') state.applied += 1;
          else state.superseded += 1;
          state.lagSamples.push(this.now() - pending.write.writtenAt);
          if (state.lagSamples.length > LAG_SAMPLES) state.lagSamples.shift();
        },
        (err: Error) => {
          this.opts.onError?.(err, state.target.name, pending.write);
          if (this.closed) return;
          if (pending.attempts + 1 >= MAX_APPLY_ATTEMPTS) {
            state.dropped += 1;
            return;
          }
          const dueAt = this.now() + Math.max(this.lag, RETRY_MIN_DELAY_MS);
          state.queue.push({ ...pending, dueAt, attempts: pending.attempts + 1 });
          this.wakeBy(dueAt);
        },
      )
      .finally(() => {
        state.inFlight = state.inFlight.filter((p) => p !== pending);
        this.settling.delete(done);
        if (!this.closed && state.queue.some((p) => p.dueAt <= this.now())) this.deliverDue();
      });
    this.settling.add(done);
  }

  private requireRegion(region: string): void {
    if (!this.states.has(region)) {
      throw new Error(`unknown region "${region}"; the emulator runs ${[...this.states.keys()].join(', ')}`);
    }
  }
}
