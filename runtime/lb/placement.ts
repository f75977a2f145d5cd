/**
 * Where a room's peers meet.
 *
 * Policy, in order:
 *   1. A room assigned to a live, active server in an active region, which the caller does not
 *      exclude, stays there (no write): peers of a room meet wherever they joined from.
 *   2. Otherwise the room goes to a lightly loaded (load / capacity) live, active server with spare
 *      capacity in this LB's region: the less loaded of two drawn at random (see lessLoadedOfTwo).
 *      When this region has none (or is evacuated or excluded), to the nearest other active region
 *      that has one and whose LB has reported a public URL.
 *   3. A takeover (the room's server is dead, draining or excluded) must land where every other LB
 *      taking the same room over at the same moment lands too, or the room splits until the media
 *      servers notice (seconds). So it is deterministic: regions by distance from the room's old
 *      region, and within the first region with capacity the server that rendezvous-hashes highest
 *      with the room id. When the caller excluded the old server (it saw it fail), the old region comes
 *      last: within the first second a dead region's other servers still look alive, and a room moved
 *      one region over costs less than a room sent back into a dead region.
 *   4. The write is conditional (new room: must not exist; takeover: version must match what we read).
 *      A lost race answers the winner when its server is usable, and otherwise tries once more from
 *      what the winner wrote. Two lost races in a row are a conflict the client retries.
 */
import { byDistanceFrom } from '../../lib/regions';
import type { MediaServerRecord, PlaceRoomResult, RoomRecord, Store } from '../store';
import { NoCapacityError, PlacementConflictError } from './apiError';
import type { Clock } from './config';
import type { FleetCache, FleetSnapshot } from './fleetCache';
import { regionApiUrl } from './regionUrls';

/** One placement plus one retry after a lost race; more would only chase a flapping room. */
const MAX_PLACEMENT_ATTEMPTS = 2;

export interface Exclusions {
  readonly serverIds: ReadonlySet<string>;
  readonly regions: ReadonlySet<string>;
}

export const NO_EXCLUSIONS: Exclusions = { serverIds: new Set(), regions: new Set() };

export type AssignmentOutcome = 'assigned' | 'placed' | 'takeover' | 'lost_race';

export interface Assignment {
  readonly room: RoomRecord;
  readonly server: MediaServerRecord;
  readonly outcome: AssignmentOutcome;
  /** The fleet view the decision was made on (for the answer's URLs and alternates). */
  readonly snapshot: FleetSnapshot;
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

function regionIsUsable(snap: FleetSnapshot, region: string, ctx: PlacementContext): boolean {
  return (
    !ctx.exclude.regions.has(region) &&
    regionIsActive(snap, region) &&
    regionApiUrl(snap, region, { region: ctx.region, publicApiUrl: ctx.publicApiUrl }) !== null
  );
}

/** Whether peers may be sent to `server` for a room it already holds. */
export function canServeRoom(server: MediaServerRecord, snap: FleetSnapshot, ctx: PlacementContext): boolean {
  return (
    server.status === 'active' &&
    !ctx.exclude.serverIds.has(server.id) &&
    ctx.isAlive(server, ctx.now) &&
    regionIsUsable(snap, server.region, ctx)
  );
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

/** A room taken over from its old server: where it was, and whether the caller saw that server fail. */
export interface Takeover {
  readonly roomId: string;
  readonly fromRegion: string;
  readonly serverFailed: boolean;
}

/**
 * The server a room should go to, or null when no usable region has capacity: for a new room the less
 * loaded of two, own region first; for a takeover the deterministic choice described above.
 */
export function chooseServer(
  snap: FleetSnapshot,
  ctx: PlacementContext,
  takeover?: Takeover,
): MediaServerRecord | null {
  const byRegion = new Map<string, MediaServerRecord[]>();
  for (const s of snap.servers.values()) {
    if (!canServeRoom(s, snap, ctx) || !hasCapacity(s)) continue;
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

export class Placement {
  constructor(
    private readonly store: Store,
    private readonly fleet: FleetCache,
    private readonly own: { region: string; publicApiUrl: string; clock: Clock },
  ) {}

  async assign(roomId: string, exclude: Exclusions): Promise<Assignment> {
    let room = await this.store.getRoom(roomId);
    const snap = await this.fleet.get();
    const ctx: PlacementContext = {
      region: this.own.region,
      publicApiUrl: this.own.publicApiUrl,
      now: this.own.clock(),
      isAlive: (s, now) => this.store.isAlive(s, now),
      pendingLoad: (s) => this.fleet.pendingRooms(s) * snap.loadPerRoom,
      exclude,
      random: Math.random,
    };
    let lost = false;
    for (let attempt = 0; ; attempt++) {
      if (room) {
        const server = await this.serverOf(room, snap);
        if (server && canServeRoom(server, snap, ctx))
          return { room, server, outcome: lost ? 'lost_race' : 'assigned', snapshot: snap };
      }
      if (attempt === MAX_PLACEMENT_ATTEMPTS) throw new PlacementConflictError(roomId);
      const takeover = room
        ? { roomId, fromRegion: room.region, serverFailed: exclude.serverIds.has(room.serverId) }
        : undefined;
      const target = chooseServer(snap, ctx, takeover);
      if (!target) throw new NoCapacityError();
      const result = await this.write(roomId, target, room?.version);
      if (result.outcome === 'placed') {
        return { room: result.room, server: target, outcome: room ? 'takeover' : 'placed', snapshot: snap };
      }
      lost = true;
      room = result.current;
    }
  }

  /** The conditional write, counted on its server from before it starts (see FleetCache.notePlacing). */
  private async write(
    roomId: string,
    target: MediaServerRecord,
    expectedVersion: number | undefined,
  ): Promise<PlaceRoomResult> {
    this.fleet.notePlacing(target.id);
    let placed = false;
    try {
      const result = await this.store.placeRoom({
        roomId,
        serverId: target.id,
        region: target.region,
        expectedVersion,
      });
      placed = result.outcome === 'placed';
      return result;
    } finally {
      this.fleet.notePlacingDone(target.id, placed);
    }
  }

  /**
   * The room's server from the cache; a server registered after the last refresh (the room was placed
   * on it by another LB within the last second) is read from the table rather than taken over.
   */
  private async serverOf(room: RoomRecord, snap: FleetSnapshot): Promise<MediaServerRecord | null> {
    return snap.servers.get(room.serverId) ?? (await this.store.getServer(room.serverId));
  }
}
