/**
 * The server's presence in the global table.
 *
 *   - Registers on start and heartbeats every `heartbeatIntervalMs` with its status and load (a full
 *     put, so an item lost to a partition or a sweep comes back). A load crossing capacity is reported
 *     at once, not at the next beat, so placement stops choosing a full server quickly.
 *   - Re-reads its rooms' legs every `roomCheckIntervalMs` (cascading: a room here is this region's
 *     leg, the room item or this region's leg item). A room whose leg of this region names another
 *     server, or whose room item was taken over into another region, was placed elsewhere: its peers
 *     are told to rejoin and the room closes here, so a split converges. A room item of another region
 *     in its first version with no leg item here is a creation race lost under last-writer-wins: the
 *     room becomes this region's leg (see checkRoom) and is piped, no peer moves. Nothing at all is
 *     left alone: it may not have replicated yet.
 *   - In the same pass keeps its live rooms' items from expiring: a room item carries a 24 h TTL from its
 *     placement, so a longer call would lose its item and the next joiner would be placed elsewhere (a
 *     split). Each room this server owns has its TTL pushed forward every `roomRefreshIntervalMs`
 *     (an hour), conditioned on the item still naming this server. Rarely, on purpose: the room item is
 *     the one item several regions write, and a refresh that reaches another region after a takeover
 *     there wins last-writer-wins and undoes it. The room check converges that split like any other
 *     (the takeover's server sends its peers here), but the fewer writes, the rarer it is; a room's
 *     first hour, when placement races happen, sees none.
 *   - In the same pass reads its region's status: when an operator evacuates the region (through any
 *     region's replica), every room here is closed with `region_evacuated` so its peers rejoin through
 *     the API, which places them outside the region. Room items stay: the LB's takeover moves them.
 *   - Removes its item on a clean exit.
 */
import type { Store } from '../store';
import type { LoadMeter } from './LoadMeter';
import type { Logger } from './logger';
import type { MediaServer } from './MediaServer';

/** Room items read in parallel per check: bounded so a busy server does not burst its replica. */
const ROOM_CHECK_CONCURRENCY = 8;

export interface RegistrarOptions {
  readonly serverId: string;
  readonly region: string;
  /** `ws://host:port` the region's LB relays signaling to. */
  readonly privateEndpoint: string;
  /** Address clients send media to. */
  readonly publicIp: string;
  /** Load units placement may fill; crossing it is reported at once. */
  readonly capacity: number;
  readonly heartbeatIntervalMs: number;
  /** How often the rooms' assignments and the region's status are re-read. */
  readonly roomCheckIntervalMs: number;
  /** How often a live room's item TTL is pushed forward (see the header). */
  readonly roomRefreshIntervalMs: number;
  readonly server: MediaServer;
  readonly store: Store;
  readonly meter: LoadMeter;
  readonly logger: Logger;
}

export class Registrar {
  private heartbeatTimer?: NodeJS.Timeout;
  private roomCheckTimer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private beatAgain = false;
  private checking = false;
  /** When each open room's item TTL was last pushed forward (or the room was first seen here). */
  private readonly refreshedAt = new Map<string, number>();
  private reportedFull = false;
  private lastLoad = 0;
  private lastUnits = 0;
  private readonly startedAt = Date.now();
  private stopped = false;
  private readonly server: MediaServer;
  private readonly store: Store;
  private readonly meter: LoadMeter;
  private readonly logger: Logger;

  constructor(private readonly opts: RegistrarOptions) {
    this.server = opts.server;
    this.store = opts.store;
    this.meter = opts.meter;
    this.logger = opts.logger;
  }

  /** Last load reported to the table. */
  get reportedLoad(): number {
    return this.lastLoad;
  }

  async start(): Promise<void> {
    await this.store.servers.register(await this.record());
    this.logger.info(
      {
        endpoint: this.opts.privateEndpoint,
        publicIp: this.opts.publicIp,
        capacity: this.opts.capacity,
      },
      'registered in the server table',
    );
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatIntervalMs);
    this.roomCheckTimer = setInterval(() => void this.checkRooms(), this.opts.roomCheckIntervalMs);
    this.server.on('loadChanged', () => {
      const full = this.server.loadUnits >= this.opts.capacity;
      if (full !== this.reportedFull) void this.heartbeat();
    });
  }

  /** Writes status and load now; concurrent calls share one write and queue at most one more. */
  heartbeat(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.beating) {
      this.beatAgain = true;
      return this.beating;
    }
    this.beating = this.beat().finally(() => {
      this.beating = undefined;
      if (this.beatAgain && !this.stopped) {
        this.beatAgain = false;
        void this.heartbeat();
      }
    });
    return this.beating;
  }

  /** Stops the timers and removes the item (clean exit). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.roomCheckTimer);
    await this.beating;
    await this.store.servers.remove(this.opts.serverId);
    this.logger.info('removed from the server table');
  }

  /** One pass over this server's rooms (exposed for the timer and for tests that cannot wait). */
  async checkRooms(): Promise<void> {
    if (this.checking || this.stopped) return;
    this.checking = true;
    try {
      const roomIds = [...this.server.rooms.keys()];
      for (const id of this.refreshedAt.keys()) if (!this.server.rooms.has(id)) this.refreshedAt.delete(id);
      if (roomIds.length > 0 && (await this.regionEvacuated())) {
        this.logger.warn(
          { rooms: roomIds.length },
          'region evacuated: sending every peer to rejoin elsewhere',
        );
        for (const id of roomIds) this.server.closeRoom(id, 'region_evacuated');
        return;
      }
      for (let i = 0; i < roomIds.length; i += ROOM_CHECK_CONCURRENCY) {
        await Promise.all(roomIds.slice(i, i + ROOM_CHECK_CONCURRENCY).map((id) => this.checkRoom(id)));
      }
    } finally {
      this.checking = false;
    }
  }

  private async regionEvacuated(): Promise<boolean> {
    try {
      return (await this.store.regions.getStatus(this.opts.region)).status === 'evacuated';
    } catch (err) {
      // An unreadable status is no evidence of an evacuation: keep the calls.
      this.logger.warn({ err: (err as Error).message }, 'cannot read the region status');
      return false;
    }
  }

  /**
   * One room's legs (cascading, store/LegRepository): this server must hold its region's leg. The
   * room item naming another region's server in its first version and no leg item for this region
   * is a creation race lost under replication lag (two regions placed the room at once): the room
   * here becomes this region's leg (a conditional create, only this region writes it) and the
   * cascade pipes it to the winner, so no peer moves. A room item taken over into another region
   * (version > 1) or a leg of this region naming another server sends the peers there.
   */
  private async checkRoom(roomId: string): Promise<void> {
    try {
      const { legs } = await this.store.legs.ofRoom(roomId);
      if (legs.size === 0) return;
      const mine = legs.get(this.opts.region);
      if (mine?.serverId === this.opts.serverId) {
        await this.refreshIfDue(roomId, mine.home);
        return;
      }
      const home = [...legs.values()].find((leg) => leg.home);
      if (!mine && (!home || home.version === 1)) {
        const adopted = await this.store.legs.place({
          roomId,
          region: this.opts.region,
          serverId: this.opts.serverId,
        });
        this.logger.info(
          { room: roomId, homeRegion: home?.region, adopted: adopted.outcome === 'placed' },
          "room item is another region's: this room is this region's leg",
        );
        if (adopted.outcome === 'placed' || adopted.current?.serverId === this.opts.serverId) return;
      }
      const owner = mine ?? home!;
      this.logger.warn(
        { room: roomId, owner: owner.serverId, ownerRegion: owner.region, version: owner.version },
        'room now belongs to another server: sending its peers there',
      );
      this.server.closeRoom(roomId, 'room_moved');
    } catch (err) {
      this.logger.warn({ room: roomId, err: (err as Error).message }, 'cannot read the room assignment');
    }
  }

  /**
   * Pushes the room item's TTL forward when the last push (or the room's arrival here: its placement
   * wrote a fresh TTL) is `roomRefreshIntervalMs` old. A lost condition means the room moved since the
   * read; the next check sends its peers after it.
   */
  private async refreshIfDue(roomId: string, home: boolean): Promise<void> {
    const now = Date.now();
    const last = this.refreshedAt.get(roomId);
    if (last === undefined) {
      this.refreshedAt.set(roomId, now);
      return;
    }
    if (now - last < this.opts.roomRefreshIntervalMs) return;
    let refreshed: boolean;
    try {
      refreshed = home
        ? await this.store.rooms.refresh(roomId, this.opts.serverId)
        : await this.store.legs.refresh(roomId, this.opts.region, this.opts.serverId);
    } catch (err) {
      // Hours of TTL are left; the next check tries again.
      this.logger.warn({ room: roomId, err: (err as Error).message }, 'cannot refresh the room item TTL');
      return;
    }
    if (refreshed) {
      this.refreshedAt.set(roomId, now);
      this.logger.debug({ room: roomId }, 'room item TTL pushed forward');
    } else {
      this.logger.info({ room: roomId }, 'room item moved to another server before its TTL refresh');
    }
  }

  private async beat(): Promise<void> {
    try {
      const record = await this.record();
      if (this.stopped) return;
      await this.store.servers.heartbeat(record);
      this.reportedFull = this.lastUnits >= this.opts.capacity;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  private async record() {
    // Read together: the sample awaits the workers, and the LB divides one by the other.
    const rooms = this.server.rooms.size;
    const sample = await this.meter.sample(this.server.loadUnits);
    this.lastLoad = sample.load;
    this.lastUnits = sample.units;
    return {
      id: this.opts.serverId,
      region: this.opts.region,
      endpoint: this.opts.privateEndpoint,
      publicIp: this.opts.publicIp,
      capacity: this.opts.capacity,
      load: sample.load,
      rooms,
      status: this.server.status,
      startedAt: this.startedAt,
    };
  }
}
