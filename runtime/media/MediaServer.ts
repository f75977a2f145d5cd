/**
 * The media server: the worker pool, the rooms on it, and the rules for who may join.
 *
 *   - A room lives on one router; a new room goes to the least-loaded live worker. Creation is
 *     serialized per room id, so two peers joining a new room at once meet on one router.
 *   - A room that empties closes and releases its table item (only if this server still owns it).
 *   - A worker that dies takes its routers with it: its rooms close and their peers are told to rejoin.
 *   - A draining server takes no joins; the registrar decides when it exits.
 *   - A media token opens one signaling session and joins once (PeerIdRegistry): a peer id another
 *     connection holds, or that already joined this server, is refused; a reconnecting client gets a
 *     new token from the LB.
 *   - A room holds one peer per identity and at most `room.maxPeers` peers (Room.addPeer).
 */
import { EventEmitter } from 'node:events';
import type { MediaClaims } from '../protocol/tokens';
import type { Store } from '../store';
import type { PeerLimits, RoomLimits } from './config';
import type { MediaEngine } from './engine';
import type { Logger } from './logger';
import { Peer, type NotificationSink } from './Peer';
import { PeerIdRegistry, type PeerIdHolder } from './PeerIdRegistry';
import { ProtocolError } from '../protocol/signaling';
import { Room, type RoomCloseReason } from './Room';
import { WorkerPool, type WorkerPoolSettings } from './WorkerPool';

/** A room closing between its creation and the join that asked for it is rare; one retry covers it. */
const MAX_JOIN_ATTEMPTS = 2;

export type ServerStatus = 'active' | 'draining';

export interface ServerStats {
  readonly status: ServerStatus;
  readonly workers: number;
  readonly workerRestarts: number;
  readonly rooms: number;
  readonly peers: number;
  readonly transports: number;
  readonly producers: number;
  readonly consumers: number;
  readonly loadUnits: number;
}

type ServerEvents = {
  /** Load units changed (a transport, consumer, peer or room came or went). */
  loadChanged: [];
  roomClosed: [roomId: string, reason: RoomCloseReason];
  /** The last room closed. */
  idle: [];
  fatal: [error: Error];
};

export interface MediaServerOptions {
  /** This server's id in the table: room items name it, media tokens are bound to it. */
  readonly serverId: string;
  /** This server's region: its rooms are that region's legs (cascading). */
  readonly region: string;
  readonly engine: MediaEngine;
  readonly workers: WorkerPoolSettings;
  readonly peerLimits: PeerLimits;
  readonly roomLimits: RoomLimits;
  /** The region's table: a room that empties here releases its item. */
  readonly store: Store;
  readonly logger: Logger;
}

export class MediaServer extends EventEmitter<ServerEvents> {
  readonly pool: WorkerPool;
  readonly rooms = new Map<string, Room>();
  private readonly pendingRooms = new Map<string, Promise<Room>>();
  /** Which connection holds each media token's peer id, and which peer ids have joined. */
  readonly peerIds = new PeerIdRegistry();
  private readonly serverId: string;
  private readonly region: string;
  private readonly peerLimits: PeerLimits;
  private readonly roomLimits: RoomLimits;
  private readonly store: Store;
  private readonly logger: Logger;
  private statusValue: ServerStatus = 'active';
  private closed = false;

  static async create({ engine, workers, ...options }: MediaServerOptions): Promise<MediaServer> {
    const pool = await WorkerPool.create({ engine, logger: options.logger, ...workers });
    return new MediaServer({ ...options, pool });
  }

  private constructor(
    options: Omit<MediaServerOptions, 'engine' | 'workers'> & { readonly pool: WorkerPool },
  ) {
    super();
    this.serverId = options.serverId;
    this.region = options.region;
    this.pool = options.pool;
    this.peerLimits = options.peerLimits;
    this.roomLimits = options.roomLimits;
    this.store = options.store;
    this.logger = options.logger;
    this.pool.on('workerDied', (index) => this.onWorkerDied(index));
    this.pool.on('fatal', (error) => this.emit('fatal', error));
  }

  get status(): ServerStatus {
    return this.statusValue;
  }

  /** A getter, not a field read: the status changes across the awaits of a join. */
  get draining(): boolean {
    return this.statusValue === 'draining';
  }

  get loadUnits(): number {
    let units = 0;
    for (const room of this.rooms.values()) units += room.loadUnits;
    return units;
  }

  stats(): ServerStats {
    let peers = 0;
    let transports = 0;
    let producers = 0;
    let consumers = 0;
    let loadUnits = 0;
    for (const room of this.rooms.values()) {
      for (const peer of room.peers.values()) {
        peers++;
        transports += peer.transports.size;
        producers += peer.producers.size;
        consumers += peer.consumers.size;
        loadUnits += peer.loadUnits;
      }
    }
    return {
      status: this.statusValue,
      workers: this.pool.alive.length,
      workerRestarts: this.pool.restartCount,
      rooms: this.rooms.size,
      peers,
      transports,
      producers,
      consumers,
      loadUnits,
    };
  }

  /**
   * Admits a peer whose media token was verified for this server and room, on the room's router
   * (created on first join). `connection` is the client's connection: it must be the one holding the
   * token's peer id, or the id must be free. `sink` receives the peer's notifications.
   */
  async join(
    claims: MediaClaims,
    displayName: string | undefined,
    connection: PeerIdHolder,
    sink: NotificationSink,
  ): Promise<{ peer: Peer; room: Room }> {
    if (this.draining || this.closed) {
      throw new ProtocolError('server_draining', 'this media server is draining; join again through the API');
    }
    const refusal = this.peerIds.claim(claims.sub, connection);
    if (refusal) throw new ProtocolError('unauthorized', refusal.message);
    this.peerIds.markJoined(claims.sub, claims.exp);
    for (let attempt = 1; attempt <= MAX_JOIN_ATTEMPTS; attempt++) {
      const room = await this.roomFor(claims.room);
      if (room.closed) continue;
      if (this.draining) break;
      const peer = new Peer({
        id: claims.sub,
        identity: claims.identity,
        displayName,
        router: room.router,
        worker: room.worker,
        limits: this.peerLimits,
        sink,
        logger: room.logger.child({ peer: claims.sub }),
      });
      room.addPeer(peer);
      peer.logger.info({ identity: claims.identity }, 'peer joined');
      return { peer, room };
    }
    throw new ProtocolError(
      this.draining ? 'server_draining' : 'internal',
      `room "${claims.room}" closed while joining; join again through the API`,
    );
  }

  /** Stops admitting peers. Calls in progress go on; the registrar decides when the process exits. */
  startDraining(): void {
    if (this.statusValue === 'draining') return;
    this.statusValue = 'draining';
    this.logger.warn({ rooms: this.rooms.size }, 'draining: no new peers; existing calls continue');
    if (this.rooms.size === 0) this.emit('idle');
  }

  /** Closes a room on this server's decision; its peers are told to rejoin elsewhere. */
  closeRoom(roomId: string, reason: Exclude<RoomCloseReason, 'empty'>): void {
    this.rooms.get(roomId)?.close(reason);
  }

  /** Closes every room (peers told to rejoin) and the workers. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const room of [...this.rooms.values()]) room.close('server_draining');
    this.pool.close();
  }

  private roomFor(roomId: string): Promise<Room> {
    const existing = this.rooms.get(roomId);
    if (existing && !existing.closed) return Promise.resolve(existing);
    let pending = this.pendingRooms.get(roomId);
    if (!pending) {
      pending = this.createRoom(roomId).finally(() => this.pendingRooms.delete(roomId));
      this.pendingRooms.set(roomId, pending);
    }
    return pending;
  }

  private async createRoom(roomId: string): Promise<Room> {
    const worker = this.pool.leastLoaded((index) => this.workerLoad(index));
    if (!worker)
      throw new ProtocolError(
        'internal',
        'no media worker is running on this server; join again through the API',
      );
    const room = await Room.create({
      id: roomId,
      serverId: this.serverId,
      region: this.region,
      worker,
      limits: this.roomLimits,
      logger: this.logger,
    });
    if (this.closed) {
      room.close('server_draining');
      throw new ProtocolError(
        'server_draining',
        'this media server is shutting down; join again through the API',
      );
    }
    this.rooms.set(roomId, room);
    room.on('loadChanged', () => this.emit('loadChanged'));
    room.on('close', (reason) => this.onRoomClosed(room, reason));
    this.emit('loadChanged');
    return room;
  }

  /** Rooms weigh one unit each on top of their transports and consumers, so empty new rooms spread too. */
  private workerLoad(index: number): number {
    let load = 0;
    for (const room of this.rooms.values()) if (room.worker.index === index) load += 1 + room.loadUnits;
    return load;
  }

  private onRoomClosed(room: Room, reason: RoomCloseReason): void {
    if (this.rooms.get(room.id) === room) this.rooms.delete(room.id);
    this.emit('roomClosed', room.id, reason);
    this.emit('loadChanged');
    // A room that moved belongs to another server now; one that emptied is ours to release, unless a
    // peer re-created it here in the meantime.
    if (reason === 'empty' || reason === 'server_draining' || reason === 'worker_died') {
      if (!this.rooms.has(room.id) && !this.pendingRooms.has(room.id)) {
        // The room item if this server holds it, else this region's leg item if it does: each
        // release is conditional on the server, so the one that is not ours is left alone.
        Promise.all([
          this.store.rooms.release(room.id, this.serverId),
          this.store.legs.release(room.id, this.region, this.serverId),
        ]).then(
          ([released, legReleased]) => room.logger.debug({ released, legReleased }, 'room item released'),
          (err: Error) =>
            room.logger.warn({ err: err.message }, 'cannot release the room item; its TTL will'),
        );
      }
    }
    if (this.rooms.size === 0) this.emit('idle');
  }

  private onWorkerDied(index: number): void {
    const affected = [...this.rooms.values()].filter((room) => room.worker.index === index);
    this.logger.error({ worker: index, rooms: affected.length }, 'worker died: its rooms rejoin elsewhere');
    for (const room of affected) room.close('worker_died');
  }
}
