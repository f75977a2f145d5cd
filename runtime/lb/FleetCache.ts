/**
 * A short-lived in-memory view of every media server and region the local replica knows about.
 *
 * Joins read servers and region statuses from here so the warm path costs one room read (plus one
 * conditional write when placing) instead of a GSI query per join. A background loop refreshes the
 * view every `fleetRefreshMs`; a join that finds it older than `fleetMaxAgeMs` (the loop is failing)
 * refreshes it itself, so stale data can delay a decision by at most that long, never indefinitely.
 * Liveness is judged at use time from the cached heartbeats, which are at most one refresh old.
 *
 * A server's load reaches the view only with its next heartbeat, so the cache also remembers the rooms
 * this LB placed since each server's last one; placement counts each of them at the load a room weighs
 * across the fleet (the live servers' load over their rooms), the only size the LB can know for a room
 * that has no peers yet.
 */
import type { MediaServerRecord, RegionView, Store } from '../store';
import { BackgroundLoop } from './BackgroundLoop';
import type { Clock } from './config';

export interface FleetSnapshot {
  readonly fetchedAt: number;
  /** Every server of every known region, by id. */
  readonly servers: ReadonlyMap<string, MediaServerRecord>;
  /** Every region with a status or summary item, by name. */
  readonly regions: ReadonlyMap<string, RegionView>;
  /** Load units a room adds, as the live servers report it: their load over their rooms. */
  readonly loadPerRoom: number;
}

export interface FleetCacheOptions {
  readonly store: Store;
  /** The LB's own region: always listed, even before any region item exists. */
  readonly region: string;
  readonly clock: Clock;
  readonly maxAgeMs: number;
  /** Called with each failed background refresh (the join path sees its own errors). */
  readonly onBackgroundError: (err: unknown) => void;
}

/**
 * Load units per room while no live server reports any rooms (a fresh fleet, or servers that predate the
 * room count): a two-peer call with audio and video (two transports and two consumers per peer;
 * runtime/media/LoadMeter.ts), the smallest real call. Counting a room too small costs some balance until the
 * first heartbeats; counting it too big would refuse joins that servers could take.
 */
export const FALLBACK_LOAD_PER_ROOM = 8;

/**
 * Mean load per room over the live servers that hold rooms (an idle server's load is its CPU floor, no
 * room's). Pooled over the fleet rather than per server: room sizes are the application's, not the
 * server's, and one server's few rooms are a noisy sample.
 */
export function loadPerRoom(
  servers: Iterable<MediaServerRecord>,
  isAlive: (server: MediaServerRecord) => boolean,
): number {
  let load = 0;
  let rooms = 0;
  for (const s of servers) {
    if (!s.rooms || !isAlive(s)) continue;
    load += s.load;
    rooms += s.rooms;
  }
  return rooms > 0 ? load / rooms : FALLBACK_LOAD_PER_ROOM;
}

export class FleetCache {
  /** Per server, when this LB placed rooms on it; entries older than its heartbeat are counted there. */
  private readonly placedAt = new Map<string, number[]>();
  /** Per server, rooms whose placing write is in flight. */
  private readonly placing = new Map<string, number>();
  private snapshot: FleetSnapshot | null = null;
  private inflight: Promise<FleetSnapshot> | null = null;
  private readonly store: Store;
  private readonly loop: BackgroundLoop;

  constructor(private readonly opts: FleetCacheOptions) {
    this.store = opts.store;
    this.loop = new BackgroundLoop({ run: () => this.refresh(), onError: opts.onBackgroundError });
  }

  /** The last snapshot, however old (null before the first refresh). */
  current(): FleetSnapshot | null {
    return this.snapshot;
  }

  /** A snapshot no older than `maxAgeMs` (default: the cache's), refreshing first when needed. */
  async get(maxAgeMs = this.opts.maxAgeMs): Promise<FleetSnapshot> {
    const snap = this.snapshot;
    if (snap && this.opts.clock() - snap.fetchedAt < maxAgeMs) return snap;
    return this.refresh();
  }

  /** Re-reads the fleet; concurrent callers share one round of queries. */
  refresh(): Promise<FleetSnapshot> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /**
   * A room's placing write on `serverId` started. Joins decided while it is in flight must count it,
   * or every join arriving during one write's round trip picks the same server.
   */
  notePlacing(serverId: string): void {
    this.placing.set(serverId, (this.placing.get(serverId) ?? 0) + 1);
  }

  /**
   * The write ended. A placed room stays counted until a heartbeat written after now, the earliest that
   * can carry its load; a lost race placed another LB's room, and a failed join is retried from scratch.
   */
  notePlacingDone(serverId: string, placed: boolean): void {
    const inFlight = (this.placing.get(serverId) ?? 0) - 1;
    if (inFlight > 0) this.placing.set(serverId, inFlight);
    else this.placing.delete(serverId);
    if (!placed) return;
    const times = this.placedAt.get(serverId) ?? [];
    times.push(this.opts.clock());
    this.placedAt.set(serverId, times);
  }

  /** Rooms this LB is placing or placed on `server` since the heartbeat the cached record carries. */
  pendingRooms(server: MediaServerRecord): number {
    const inFlight = this.placing.get(server.id) ?? 0;
    const times = this.placedAt.get(server.id);
    if (!times) return inFlight;
    const pending = times.filter((t) => t >= server.heartbeatAt);
    if (pending.length === 0) this.placedAt.delete(server.id);
    else if (pending.length < times.length) this.placedAt.set(server.id, pending);
    return inFlight + pending.length;
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
      this.store.regions.list(),
      this.store.servers.list(this.opts.region),
    ]);
    const others = regionViews.map((r) => r.region).filter((r) => r !== this.opts.region);
    const otherServers = await Promise.all(others.map((r) => this.store.servers.list(r)));
    const servers = new Map<string, MediaServerRecord>();
    for (const s of [ownServers, ...otherServers].flat()) servers.set(s.id, s);
    const snap: FleetSnapshot = {
      fetchedAt: startedAt,
      servers,
      regions: new Map(regionViews.map((r) => [r.region, r])),
      loadPerRoom: loadPerRoom(servers.values(), (s) => this.store.servers.isAlive(s, startedAt)),
    };
    this.snapshot = snap;
    return snap;
  }
}
