/**
 * A room: one mediasoup router on one worker and the peers joined to it. The room relays what peers
 * need to know about each other (joins, leaves, producers) and closes itself when its last peer leaves.
 * A room closed by the server (room moved, worker died, drain timeout) tells every peer to rejoin
 * through the API first, so clients move instead of seeing a bare disconnect.
 *
 * Who may be in it: one peer per identity (the media token's `identity`, the join token's subject). A
 * second session of an identity replaces the first, which is closed as `replaced`: a participant holds
 * one peer's worth of the room whatever it does with its join token, and a client switching servers or
 * networks (make-before-break) takes its own place over. Beyond that, at most `maxPeers` peers; a
 * replacement never counts against it.
 */
import { EventEmitter } from 'node:events';
import { ROOM_MEDIA_CODECS } from './codecs';
import type { RoomLimits } from './config';
import type { EngineWorker, MsProducer, MsRouter } from './engine';
import type { Logger } from './logger';
import type { Peer } from './Peer';
import {
  ProtocolError,
  type Notifications,
  type NotificationName,
  type ProducerInfo,
} from '../protocol/signaling';

export type RejoinReason = Notifications['rejoin']['reason'];
/** `empty`: the last peer left; otherwise the server closed the room and sent its peers elsewhere. */
export type RoomCloseReason = 'empty' | RejoinReason;

type RoomEvents = {
  close: [reason: RoomCloseReason];
  /** A peer joined, left, or changed its transports/consumers. */
  loadChanged: [];
};

export interface RoomOptions {
  readonly id: string;
  /** This media server's id: peers told to rejoin exclude it. */
  readonly serverId: string;
  /** The worker the room's router is created on. */
  readonly worker: EngineWorker;
  readonly limits: RoomLimits;
  /** The server's logger; the room's carries its id and worker. */
  readonly logger: Logger;
}

export class Room extends EventEmitter<RoomEvents> {
  readonly id: string;
  readonly router: MsRouter;
  readonly worker: EngineWorker;
  readonly logger: Logger;
  readonly peers = new Map<string, Peer>();
  private readonly serverId: string;
  private readonly limits: RoomLimits;
  private closedFlag = false;
  /** Set while a replaced peer closes, so its leaving does not close the room as empty. */
  private replacing = false;

  static async create(options: RoomOptions): Promise<Room> {
    const router = await options.worker.createRouter(ROOM_MEDIA_CODECS);
    return new Room({
      ...options,
      router,
      logger: options.logger.child({ room: options.id, worker: options.worker.index }),
    });
  }

  private constructor(options: RoomOptions & { readonly router: MsRouter }) {
    super();
    this.id = options.id;
    this.serverId = options.serverId;
    this.router = options.router;
    this.worker = options.worker;
    this.limits = options.limits;
    this.logger = options.logger;
    this.logger.info({ router: this.router.id }, 'room created');
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get loadUnits(): number {
    let units = 0;
    for (const peer of this.peers.values()) units += peer.loadUnits;
    return units;
  }

  /**
   * Adds a peer that was built on this room's router and wires its events to the other peers. Closes
   * the peer its identity had here, if any (`replaced`); refuses the peer with `room_full`, changing
   * nothing, when the room is full and it replaces nobody.
   */
  addPeer(peer: Peer): void {
    if (this.closedFlag) throw new Error(`room "${this.id}" is closed`);
    const previous = [...this.peers.values()].find((p) => p.identity === peer.identity);
    if (!previous && this.peers.size >= this.limits.maxPeers) {
      throw new ProtocolError(
        'room_full',
        `room "${this.id}" is full (${this.limits.maxPeers} peers); join again later`,
      );
    }
    if (previous) {
      previous.logger.info({ by: peer.id }, 'peer replaced by a newer session of its identity');
      // The others see the old peer leave (its producers close first) before the new one joins.
      this.replacing = true;
      try {
        previous.close('replaced');
      } finally {
        this.replacing = false;
      }
    }
    this.peers.set(peer.id, peer);
    this.broadcast('peerJoined', { peerId: peer.id, identity: peer.identity }, peer.id);
    peer.on('newProducer', (producer) =>
      this.broadcast('newProducer', producerInfo(peer.id, producer), peer.id),
    );
    peer.on('producerClosed', (producerId) =>
      this.broadcast('producerClosed', { producerId, peerId: peer.id }, peer.id),
    );
    peer.on('producerPaused', (producerId, paused) =>
      this.broadcast('producerPaused', { producerId, paused }, peer.id),
    );
    peer.on('mediaStarted', (producerId) => {
      for (const other of this.peers.values()) if (other !== peer) other.countConsumerOf(producerId);
    });
    peer.on('loadChanged', () => this.emit('loadChanged'));
    peer.on('close', () => {
      if (this.closedFlag || this.peers.get(peer.id) !== peer) return;
      this.peers.delete(peer.id);
      this.broadcast('peerLeft', { peerId: peer.id }, peer.id);
      this.emit('loadChanged');
      if (this.peers.size === 0 && !this.replacing) this.close('empty');
    });
    this.emit('loadChanged');
  }

  /** Every producer of the room, for a peer that joins after they were created. */
  listProducers(): ProducerInfo[] {
    const infos: ProducerInfo[] = [];
    for (const peer of this.peers.values()) {
      for (const producer of peer.producers.values()) infos.push(producerInfo(peer.id, producer));
    }
    return infos;
  }

  findProducer(producerId: string): { peer: Peer; producer: MsProducer } | undefined {
    for (const peer of this.peers.values()) {
      const producer = peer.producers.get(producerId);
      if (producer) return { peer, producer };
    }
    return undefined;
  }

  /** Which peer holds an object, so a request for another peer's object is refused as such. */
  ownerOf(kind: 'transport' | 'producer' | 'consumer', id: string): Peer | undefined {
    for (const peer of this.peers.values()) {
      const map =
        kind === 'transport' ? peer.transports : kind === 'producer' ? peer.producers : peer.consumers;
      if (map.has(id)) return peer;
    }
    return undefined;
  }

  broadcast<N extends NotificationName>(
    notification: N,
    data: Notifications[N],
    exceptPeerId?: string,
  ): void {
    for (const peer of this.peers.values()) {
      if (peer.id !== exceptPeerId) peer.notify(notification, data);
    }
  }

  /**
   * Idempotent. A server-side reason (anything but `empty`) sends every peer `rejoin` before closing
   * it, with this server's id so the client excludes it when it joins again.
   */
  close(reason: RoomCloseReason): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (reason !== 'empty') this.broadcast('rejoin', { reason, serverId: this.serverId });
    for (const peer of [...this.peers.values()]) peer.close('room_closed');
    this.peers.clear();
    this.router.close();
    this.logger.info({ reason }, 'room closed');
    this.emit('close', reason);
  }
}

function producerInfo(peerId: string, producer: MsProducer): ProducerInfo {
  return { producerId: producer.id, peerId, kind: producer.kind, paused: producer.paused };
}
