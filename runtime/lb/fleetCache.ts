/**
 * A short-lived in-memory view of every media server and region the local replica knows about.
 *
 * Joins read servers and region statuses from here so the warm path costs one room read (plus one
 * conditional write when placing) instead of a GSI query per join. A background loop refreshes the
 * view every `fleetRefreshMs`; a join that finds it older than `fleetMaxAgeMs` (the loop is failing)
 * refreshes it itself, so stale data can delay a decision by at most that long, never indefinitely.
 * Liveness is judged at use time from the cached heartbeats, which are at most one refresh old.
 */
import type { MediaServerRecord, RegionView, Store } from '../store';
import { BackgroundLoop } from './backgroundLoop';
import type { Clock } from './config';

export interface FleetSnapshot {
  readonly fetchedAt: number;
  /** Every server of every known region, by id. */
  readonly servers: ReadonlyMap<string, MediaServerRecord>;
  /** Every region with a status or summary item, by name. */
  readonly regions: ReadonlyMap<string, RegionView>;
}

export interface FleetCacheOptions {
  /** The LB's own region: always listed, even before any region item exists. */
  readonly region: string;
  readonly clock: Clock;
  readonly maxAgeMs: number;
  /** Called with each failed background refresh (the join path sees its own errors). */
  readonly onBackgroundError: (err: unknown) => void;
}

/**
 * Load units a newly placed room is assumed to add before its server reports it: a two-peer call
 * with audio and video (two transports and two consumers per peer; runtime/media/load.ts). The LB
 * cannot know a room's size when it places it; the estimate only has to be the right order of
 * magnitude to spread the rooms placed within one heartbeat period instead of stacking them.
 */
export const PLACED_ROOM_LOAD_ESTIMATE = 8;

export class FleetCache {
  /** Per server, when this LB placed rooms on it; entries older than its heartbeat are counted there. */
  private readonly placedAt = new Map<string, number[]>();
  private snapshot: FleetSnapshot | null = null;
  private inflight: Promise<FleetSnapshot> | null = null;
  private readonly loop: BackgroundLoop;

  constructor(
    private readonly store: Store,
    private readonly opts: FleetCacheOptions,
  ) {
    this.loop = new BackgroundLoop(() => this.refresh(), opts.onBackgroundError);
  }

  /** The last snapshot, however old (null before the first refresh). */
  current(): FleetSnapshot | null {
    return this.snapshot;
  }

  /** A snapshot no older than `maxAgeMs`, refreshing first when needed. */
  async get(): Promise<FleetSnapshot> {
    const snap = this.snapshot;
    if (snap && this.opts.clock() - snap.fetchedAt < this.opts.maxAgeMs) return snap;
    return this.refresh();
  }

  /** Re-reads the fleet; concurrent callers share one round of queries. */
  refresh(): Promise<FleetSnapshot> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  notePlaced(serverId: string): void {
    const times = this.placedAt.get(serverId) ?? [];
    times.push(this.opts.clock());
    this.placedAt.set(serverId, times);
  }

  /** Load this LB added to `server` since the heartbeat the cached record carries. */
  pendingLoad(server: MediaServerRecord): number {
    const times = this.placedAt.get(server.id);
    if (!times) return 0;
    const pending = times.filter((t) => t >= server.heartbeatAt);
    if (pending.length === 0) this.placedAt.delete(server.id);
    else if (pending.length < times.length) this.placedAt.set(server.id, pending);
    return pending.length * PLACED_ROOM_LOAD_ESTIMATE;
  }

  /** Starts the background refresh loop (no-op when `intervalMs` is 0). */
  start(intervalMs: number): void {
    this.loop.start(intervalMs);
  }

  stop(): void {
    this.loop.stop();
  }

  private async load(): Promise<FleetSnapshot> {
    const startedAt = this.opts.clock();
    // The own region's servers do not depend on the region list: fetch them alongside it.
    const [regionViews, ownServers] = await Promise.all([
      this.store.listRegions(),
      this.store.listServers(this.opts.region),
    ]);
    const others = regionViews.map((r) => r.region).filter((r) => r !== this.opts.region);
    const otherServers = await Promise.all(others.map((r) => this.store.listServers(r)));
    const servers = new Map<string, MediaServerRecord>();
    for (const s of [ownServers, ...otherServers].flat()) servers.set(s.id, s);
    const snap: FleetSnapshot = {
      fetchedAt: startedAt,
      servers,
      regions: new Map(regionViews.map((r) => [r.region, r])),
    };
    this.snapshot = snap;
    return snap;
  }
}
