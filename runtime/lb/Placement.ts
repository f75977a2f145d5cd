/**
 * Where a room's peers meet.
 *
 * Policy, in order:
 *   1. A room stays on its server unless the LB's own evidence says that server is gone: its item is
 *      gone, it is draining, its region is evacuated or has no known URL, or its heartbeat proves it
 *      dead (for another region's server only after a wider margin: replication lag and clock skew,
 *      see servers.isGone). A client that names the server (or its region) as failed in `exclude` is
 *      heard, never obeyed: the LB probes the server itself with a sub-second deadline (ServerProbe),
 *      and a server that answers keeps its room. A joiner into a room whose server is full is refused.
 *   2. A new room goes to a lightly loaded (load / capacity) live, active server with spare capacity in
 *      this LB's region: the less loaded of two drawn at random (see lessLoadedOfTwo). When this region
 *      has none (or is evacuated or excluded), to the nearest other active region that has one and
 *      whose LB has reported a public URL. The caller's exclusions steer this choice.
 *   3. A takeover must land where every other LB taking the same room over at the same moment lands
 *      too, or the room splits until the media servers notice (seconds). So it is deterministic, and
 *      no caller's exclusions enter it (two clients would exclude different things): regions by
 *      distance from the room's old region, and within the first region with capacity the server that
 *      rendezvous-hashes highest with the room id. When a client's claim started it (the probe failed),
 *      the old region comes last: within the first seconds a dead region's other servers still look
 *      alive, and a room moved one region over costs less than a room sent back into a dead region.
 *   4. Takeovers on a probe alone are rate limited per room: a room that moved within
 *      TAKEOVER_COOLDOWN_MS is not moved again until its heartbeats agree, so no sequence of claims can
 *      make a room flap (a failed probe is a moment's view; a heartbeat going stale is the server's).
 *   5. The write is conditional (new room: must not exist; takeover: version must match what we read).
 *      A lost race answers the winner when its server is usable, and otherwise tries once more from
 *      what the winner wrote. Two lost races in a row are a conflict the client retries.
 *   6. Cascading (DESIGN "Cascading", store/LegRepository): a peer joins its own region's leg of the
 *      room. When the room lives in another region and this LB's region can serve (active, with a URL,
 *      not excluded by the caller), the peer goes to this region's leg (`leg#<region>`): joined while
 *      its server keeps it (rule 1), taken over within this region when its server is gone (rules 3-5,
 *      restricted to this region: a leg never leaves its region), created on the less loaded of two
 *      servers of this region when there is none. Only this region's LBs write this region's leg, so
 *      its conditional writes never race another region. A region that cannot serve (no capacity, no
 *      live server) sends the peer to the room's own server, as before cascading; a room whose peers
 *      all come through one region is one leg, its room item, exactly as before.
 */
import { byDistanceFrom } from '../protocol/regions';
import type { LegRecord, MediaServerRecord, PlaceRoomResult, RoomRecord, Store } from '../store';
import { NoCapacityError, PlacementConflictError, RoomRecoveringError, ServerFullError } from './apiError';
import type { Clock } from './config';
import type { FleetCache, FleetSnapshot } from './FleetCache';
import type { LbMetrics } from './LbMetrics';
import { regionApiUrl } from './regionUrls';
import type { ServerProbe } from './ServerProbe';

/** One placement plus one retry after a lost race; more would only chase a flapping room. */
const MAX_PLACEMENT_ATTEMPTS = 2;
/**
 * A room moved this recently is not moved again on a failed probe alone (heartbeats still decide).
 * Long enough that claims cannot make a room flap; short next to a server's liveness window, so a
 * server that really died right after a takeover loses its room to the heartbeat evidence anyway.
 */
export const TAKEOVER_COOLDOWN_MS = 10_000;

export interface Exclusions {
  readonly serverIds: ReadonlySet<string>;
  readonly regions: ReadonlySet<string>;
}

export const NO_EXCLUSIONS: Exclusions = { serverIds: new Set(), regions: new Set() };
/**
 * How old a snapshot may be when it shows no server of this LB's own region able to take a peer. The
 * cache's usual age (seconds) can predate a server that just started or came back, and placing this
 * region's peers elsewhere on that stale view would cascade them through a far region for nothing;
 * at most one fleet read per this period is the price while the region really has no server.
 */
export const OWN_REGION_RECHECK_MS = 1_000;

export type AssignmentOutcome = 'assigned' | 'placed' | 'takeover' | 'lost_race';

/** Which item the peer's server came from: the room item, or this region's leg of a cascaded room. */
export type AssignmentItem = 'room' | 'leg';

/** What convinced the LB that a room's server is gone. */
export type GoneEvidence = 'no_item' | 'draining' | 'evacuated' | 'no_url' | 'heartbeat' | 'probe';

export interface Assignment {
  readonly room: RoomRecord;
  readonly server: MediaServerRecord;
  readonly outcome: AssignmentOutcome;
  /** The fleet view the decision was made on (for the answer's URLs and alternates). */
  readonly snapshot: FleetSnapshot;
  /** Why the room left its old server, for a takeover. */
  readonly evidence?: GoneEvidence;
  /** @default 'room' */
  readonly item?: AssignmentItem;
}

export interface PlacementContext {
  readonly region: string;
  readonly publicApiUrl: string;
  readonly now: number;
  readonly isAlive: (server: MediaServerRecord, now: number) => boolean;
  /**
   * Load units this LB has sent to `server` since its last heartbeat (which cannot show them yet).
   * Without it every room placed within one heartbeat period lands on the same least-loaded server;
   * counted too low, it still sends that server several times its share.
   */
  readonly pendingLoad?: (server: MediaServerRecord) => number;
  readonly exclude: Exclusions;
  /** Uniform in [0, 1): draws a new room's two candidate servers. */
  readonly random: () => number;
}

/** A region with no status item was never evacuated. */
export function regionIsActive(snap: FleetSnapshot, region: string): boolean {
  return (snap.regions.get(region)?.status ?? 'active') === 'active';
}

/** An active region whose LB has reported where clients reach it. */
function regionIsUsable(snap: FleetSnapshot, region: string, ctx: PlacementContext): boolean {
  return (
    regionIsActive(snap, region) &&
    regionApiUrl(snap, region, { region: ctx.region, publicApiUrl: ctx.publicApiUrl }) !== null
  );
}

/** Whether `server` may be given a room: a new one, or one taken over. */
export function isTarget(server: MediaServerRecord, snap: FleetSnapshot, ctx: PlacementContext): boolean {
  return (
    server.status === 'active' && ctx.isAlive(server, ctx.now) && regionIsUsable(snap, server.region, ctx)
  );
}

function excludedBy(exclude: Exclusions, server: MediaServerRecord): boolean {
  return exclude.serverIds.has(server.id) || exclude.regions.has(server.region);
}

function hasCapacity(server: MediaServerRecord): boolean {
  return server.capacity > 0 && server.load < server.capacity;
}

function leastLoaded(
  servers: readonly MediaServerRecord[],
  pending: (s: MediaServerRecord) => number,
): MediaServerRecord | null {
  let best: MediaServerRecord | null = null;
  let bestRatio = Infinity;
  for (const s of servers) {
    const load = s.load + pending(s);
    if (load >= s.capacity) continue;
    const ratio = load / s.capacity;
    if (ratio < bestRatio || (ratio === bestRatio && best !== null && s.id < best.id)) {
      best = s;
      bestRatio = ratio;
    }
  }
  return best;
}

/**
 * The less loaded of two servers with room to spare, drawn at random (the "power of two choices").
 * Every LB of a region places on the same view, as old as the last heartbeats, and none sees the rooms
 * the others placed since; strictly least-loaded, they would all pile onto the server that looks
 * lightest until it reports. Two random choices keep them apart and still never pick the fullest
 * server (Mitzenmacher, "How useful is old information?", 2000).
 */
function lessLoadedOfTwo(
  servers: readonly MediaServerRecord[],
  pending: (s: MediaServerRecord) => number,
  random: () => number,
): MediaServerRecord | null {
  const open = servers.filter((s) => s.load + pending(s) < s.capacity);
  if (open.length <= 2) return leastLoaded(open, pending);
  const first = Math.floor(random() * open.length);
  // The second draw skips the first, so the two differ.
  const second = (first + 1 + Math.floor(random() * (open.length - 1))) % open.length;
  return leastLoaded([open[first]!, open[second]!], pending);
}

/** Rendezvous (highest random weight) score: every LB ranks a room's candidate servers identically. */
function rendezvousScore(roomId: string, serverId: string): number {
  // FNV-1a over "room|server": cheap, stable across processes, well spread for short ids.
  let h = 0x811c9dc5;
  const key = `${roomId}|${serverId}`;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function rendezvous(roomId: string, servers: readonly MediaServerRecord[]): MediaServerRecord | null {
  let best: MediaServerRecord | null = null;
  let bestScore = -1;
  for (const s of servers) {
    const score = rendezvousScore(roomId, s.id);
    if (score > bestScore || (score === bestScore && best !== null && s.id < best.id)) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

/**
 * A room taken over from its old server: where it was, and whether a client's claim that the server
 * failed (confirmed by a probe) started it.
 */
export interface Takeover {
  readonly roomId: string;
  readonly fromRegion: string;
  readonly fromServerId: string;
  readonly serverFailed: boolean;
}

/**
 * The server a room should go to, or null when no usable region has capacity: for a new room the less
 * loaded of two, own region first, avoiding what the caller excluded; for a takeover the deterministic
 * choice described above, whatever the caller excluded.
 */
export function chooseServer(
  snap: FleetSnapshot,
  ctx: PlacementContext,
  takeover?: Takeover,
): MediaServerRecord | null {
  const byRegion = new Map<string, MediaServerRecord[]>();
  for (const s of snap.servers.values()) {
    if (!isTarget(s, snap, ctx) || !hasCapacity(s)) continue;
    if (takeover ? s.id === takeover.fromServerId : excludedBy(ctx.exclude, s)) continue;
    byRegion.set(s.region, [...(byRegion.get(s.region) ?? []), s]);
  }
  if (takeover) {
    const ordered = byDistanceFrom(takeover.fromRegion, [...byRegion.keys()]);
    const regions = takeover.serverFailed
      ? [
          ...ordered.filter((r) => r !== takeover.fromRegion),
          ...ordered.filter((r) => r === takeover.fromRegion),
        ]
      : ordered;
    for (const region of regions) {
      const best = rendezvous(takeover.roomId, byRegion.get(region) ?? []);
      if (best) return best;
    }
    return null;
  }
  const others = [...byRegion.keys()].filter((r) => r !== ctx.region);
  for (const region of [ctx.region, ...byDistanceFrom(ctx.region, others)]) {
    const best = lessLoadedOfTwo(byRegion.get(region) ?? [], ctx.pendingLoad ?? (() => 0), ctx.random);
    if (best) return best;
  }
  return null;
}

export interface PlacementOptions {
  readonly store: Store;
  readonly fleet: FleetCache;
  readonly probe: ServerProbe;
  readonly metrics: LbMetrics;
  readonly region: string;
  readonly publicApiUrl: string;
  readonly clock: Clock;
}

type PlaceLegResultOf = Awaited<ReturnType<Store['legs']['place']>>;

type Judgement = { readonly keep: true } | { readonly keep: false; readonly evidence: GoneEvidence };

export class Placement {
  constructor(private readonly deps: PlacementOptions) {}

  async assign(roomId: string, exclude: Exclusions): Promise<Assignment> {
    const { store, fleet } = this.deps;
    const room = await store.rooms.get(roomId);
    let snap = await fleet.get();
    let ctx = this.context(snap, exclude);
    if (!this.ownRegionHasTarget(snap, ctx)) {
      snap = await fleet.get(OWN_REGION_RECHECK_MS);
      ctx = this.context(snap, exclude);
    }
    // A room that does not exist yet starts as a room item: a new room costs no extra read. (A room
    // item released while other regions' legs live is placed again; its server converges with this
    // region's leg through the media servers' room checks.)
    if (room && room.region !== ctx.region && this.canHostLeg(snap, ctx)) {
      const leg = await store.legs.get(roomId, ctx.region);
      // With no leg here yet, a room whose server the table already shows gone is taken over as
      // before cascading (rule 3): its room item moves, and no dead region's item stays the room's.
      if (leg || !(await this.tableShowsGone(room, snap, ctx))) {
        const assigned = await this.assignLeg(roomId, leg, snap, ctx);
        if (assigned) return assigned;
      }
    }
    return this.assignRoom(roomId, room, snap, ctx);
  }

  private context(snap: FleetSnapshot, exclude: Exclusions): PlacementContext {
    const { store, fleet } = this.deps;
    return {
      region: this.deps.region,
      publicApiUrl: this.deps.publicApiUrl,
      now: this.deps.clock(),
      isAlive: (s, now) => store.servers.isAlive(s, now),
      pendingLoad: (s) => fleet.pendingRooms(s) * snap.loadPerRoom,
      exclude,
      random: Math.random,
    };
  }

  /** The table's own evidence that a room's server is gone (no probe: a client's claim is not asked). */
  private async tableShowsGone(
    room: RoomRecord,
    snap: FleetSnapshot,
    ctx: PlacementContext,
  ): Promise<boolean> {
    const server = await this.serverOf(room, snap);
    const judgement = await this.judge(server, snap, { ...ctx, exclude: NO_EXCLUSIONS });
    return !judgement.keep;
  }

  /** Whether the snapshot shows a server of this LB's region that may take a peer (excluded ones aside). */
  private ownRegionHasTarget(snap: FleetSnapshot, ctx: PlacementContext): boolean {
    for (const server of snap.servers.values()) {
      if (
        server.region === ctx.region &&
        !ctx.exclude.serverIds.has(server.id) &&
        isTarget(server, snap, ctx)
      )
        return true;
    }
    return false;
  }

  /** Whether this LB's region may hold a leg for its peers: usable and not excluded by the caller. */
  private canHostLeg(snap: FleetSnapshot, ctx: PlacementContext): boolean {
    return regionIsUsable(snap, ctx.region, ctx) && !ctx.exclude.regions.has(ctx.region);
  }

  /**
   * This region's leg of a room that lives elsewhere (rule 6): kept, taken over within this region, or
   * created. Null when this region has no server for it: the caller sends the peer to the room's server.
   */
  private async assignLeg(
    roomId: string,
    found: LegRecord | null,
    snap: FleetSnapshot,
    ctx: PlacementContext,
  ): Promise<Assignment | null> {
    let leg = found;
    let lost = false;
    const asRoom = (l: LegRecord): RoomRecord => ({
      id: roomId,
      serverId: l.serverId,
      region: l.region,
      version: l.version,
      createdAt: l.createdAt,
      updatedAt: l.updatedAt,
    });
    for (let attempt = 0; ; attempt++) {
      let evidence: GoneEvidence | undefined;
      let target: MediaServerRecord | null;
      if (leg) {
        const server = await this.serverOf(asRoom(leg), snap);
        const judgement = await this.judge(server, snap, ctx);
        if (judgement.keep) {
          if (server!.load >= server!.capacity) throw new ServerFullError(roomId);
          return {
            room: asRoom(leg),
            server: server!,
            outcome: lost ? 'lost_race' : 'assigned',
            snapshot: snap,
            item: 'leg',
          };
        }
        evidence = judgement.evidence;
        if (evidence === 'probe' && leg.version > 1 && ctx.now - leg.updatedAt < TAKEOVER_COOLDOWN_MS) {
          throw new RoomRecoveringError(roomId, TAKEOVER_COOLDOWN_MS - (ctx.now - leg.updatedAt));
        }
        // Deterministic within this region, whatever the caller excluded (see rule 3).
        target = rendezvous(
          roomId,
          [...snap.servers.values()].filter(
            (s) =>
              s.region === ctx.region && s.id !== leg!.serverId && isTarget(s, snap, ctx) && hasCapacity(s),
          ),
        );
      } else {
        target = lessLoadedOfTwo(
          [...snap.servers.values()].filter(
            (s) =>
              s.region === ctx.region &&
              isTarget(s, snap, ctx) &&
              hasCapacity(s) &&
              !excludedBy(ctx.exclude, s),
          ),
          ctx.pendingLoad ?? (() => 0),
          ctx.random,
        );
      }
      if (!target) return null;
      if (attempt === MAX_PLACEMENT_ATTEMPTS) throw new PlacementConflictError(roomId);
      const result = await this.writeLeg(roomId, target, leg?.version);
      if (result.outcome === 'placed') {
        if (evidence) this.deps.metrics.takeovers.inc({ evidence });
        return {
          room: asRoom(result.leg),
          server: target,
          outcome: leg ? 'takeover' : 'placed',
          snapshot: snap,
          item: 'leg',
          ...(evidence && { evidence }),
        };
      }
      lost = true;
      leg = result.current;
    }
  }

  private async assignRoom(
    roomId: string,
    found: RoomRecord | null,
    snap: FleetSnapshot,
    ctx: PlacementContext,
  ): Promise<Assignment> {
    let room = found;
    let lost = false;
    for (let attempt = 0; ; attempt++) {
      let takeover: Takeover | undefined;
      let evidence: GoneEvidence | undefined;
      if (room) {
        const server = await this.serverOf(room, snap);
        const judgement = await this.judge(server, snap, ctx);
        if (judgement.keep) {
          // A room stays where it is, but a full server takes no more peers (the heartbeat's load).
          if (server!.load >= server!.capacity) throw new ServerFullError(roomId);
          return { room, server: server!, outcome: lost ? 'lost_race' : 'assigned', snapshot: snap };
        }
        evidence = judgement.evidence;
        if (evidence === 'probe' && room.version > 1 && ctx.now - room.updatedAt < TAKEOVER_COOLDOWN_MS) {
          throw new RoomRecoveringError(roomId, TAKEOVER_COOLDOWN_MS - (ctx.now - room.updatedAt));
        }
        takeover = {
          roomId,
          fromRegion: room.region,
          fromServerId: room.serverId,
          serverFailed: evidence === 'probe',
        };
      }
      if (attempt === MAX_PLACEMENT_ATTEMPTS) throw new PlacementConflictError(roomId);
      const target = chooseServer(snap, ctx, takeover);
      if (!target) throw new NoCapacityError();
      const result = await this.write(roomId, target, room?.version);
      if (result.outcome === 'placed') {
        if (evidence) this.deps.metrics.takeovers.inc({ evidence });
        return {
          room: result.room,
          server: target,
          outcome: room ? 'takeover' : 'placed',
          snapshot: snap,
          ...(evidence && { evidence }),
        };
      }
      lost = true;
      room = result.current;
    }
  }

  /**
   * Whether a room's current server keeps it: yes, unless this LB's own evidence says the server is
   * gone. A client's exclusion of the server (or its region) only makes the LB look: it probes.
   */
  private async judge(
    server: MediaServerRecord | null,
    snap: FleetSnapshot,
    ctx: PlacementContext,
  ): Promise<Judgement> {
    const gone = (evidence: GoneEvidence): Judgement => ({ keep: false, evidence });
    if (!server) return gone('no_item');
    if (server.status === 'draining') return gone('draining');
    if (!regionIsActive(snap, server.region)) return gone('evacuated');
    if (regionApiUrl(snap, server.region, ctx) === null) return gone('no_url');
    if (this.deps.store.servers.isGone(server, ctx.now)) return gone('heartbeat');
    if (!excludedBy(ctx.exclude, server)) return { keep: true };
    const probe = await this.deps.probe.check(server);
    this.deps.metrics.serverProbes.inc({ verdict: probe.verdict });
    return probe.verdict === 'alive' ? { keep: true } : gone('probe');
  }

  /** The conditional write, counted on its server from before it starts (see FleetCache.notePlacing). */
  private async write(
    roomId: string,
    target: MediaServerRecord,
    expectedVersion: number | undefined,
  ): Promise<PlaceRoomResult> {
    const { store, fleet } = this.deps;
    fleet.notePlacing(target.id);
    let placed = false;
    try {
      const result = await store.rooms.place({
        roomId,
        serverId: target.id,
        region: target.region,
        expectedVersion,
      });
      placed = result.outcome === 'placed';
      return result;
    } finally {
      fleet.notePlacingDone(target.id, placed);
    }
  }

  /** The leg's conditional write, counted on its server like a room's (see write). */
  private async writeLeg(
    roomId: string,
    target: MediaServerRecord,
    expectedVersion: number | undefined,
  ): Promise<PlaceLegResultOf> {
    const { store, fleet } = this.deps;
    fleet.notePlacing(target.id);
    let placed = false;
    try {
      const result = await store.legs.place({
        roomId,
        region: target.region,
        serverId: target.id,
        expectedVersion,
      });
      placed = result.outcome === 'placed';
      return result;
    } finally {
      fleet.notePlacingDone(target.id, placed);
    }
  }

  /**
   * The room's server from the cache; a server registered after the last refresh (the room was placed
   * on it by another LB within the last second) is read from the table rather than taken over.
   */
  private async serverOf(room: RoomRecord, snap: FleetSnapshot): Promise<MediaServerRecord | null> {
    return snap.servers.get(room.serverId) ?? (await this.deps.store.servers.get(room.serverId));
  }
}
