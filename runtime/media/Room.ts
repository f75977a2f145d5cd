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
 *
 * Cascading (DESIGN "Cascading"): the room is this region's leg of a room that may span regions. The
 * server's Cascade keeps one PipeLink per other live leg in `links` and hands the producers piped in
 * from there to the room (`addRemoteProducer`): this leg's peers see them like local producers, their
 * remote peers join and leave with them. Pipes and pipe producers count in the room's load.
 */
import { EventEmitter } from 'node:events';
import { ROOM_MEDIA_CODECS } from './codecs';
import type { RoomLimits } from './config';
import type { EngineWorker, MsProducer, MsRouter } from './engine';
import type { Logger } from './logger';
import type { Peer, ProducerOwner } from './Peer';
import type { PipeLink } from './PipeLink';
import {
  ProtocolError,
  type Notifications,
  type NotificationName,
  type ProducerCloseReason,
  type ServerProducerInfo,
} from '../protocol/signaling';

export type RejoinReason = Notifications['rejoin']['reason'];
/** `empty`: the last peer left; otherwise the server closed the room and sent its peers elsewhere. */
export type RoomCloseReason = 'empty' | RejoinReason;

type RoomEvents = {
  close: [reason: RoomCloseReason];
  /** A peer joined, left, or changed its transports/consumers. */
  loadChanged: [];
  /** A local peer's producer was created: the cascade pipes it to the other legs. */
  localProducer: [peer: Peer, producer: MsProducer];
  /** A local peer's producer closed: the cascade tells the other legs at once. */
  localProducerClosed: [producerId: string];
};

/** A producer of another leg's peer, piped in over the link to `region`. */
export interface RemoteProducer {
  readonly producer: MsProducer;
  readonly peerId: string;
  readonly identity: string;
  readonly region: string;
}

export interface RoomOptions {
  readonly id: string;
  /** This media server's id: peers told to rejoin exclude it. */
  readonly serverId: string;
  /** This media server's region: the region its peers are in, as the other peers are told. */
  readonly region: string;
  /** The worker the room's router is created on. */
  readonly worker: EngineWorker;
  readonly limits: RoomLimits;
  /** The server's logger; the room's carries its id and worker. */
  readonly logger: Logger;
}

export class Room extends EventEmitter<RoomEvents> {
  readonly id: string;
  /** This leg's region (see RoomOptions). */
  readonly region: string;
  readonly router: MsRouter;
  readonly worker: EngineWorker;
  readonly logger: Logger;
  readonly peers = new Map<string, Peer>();
  /** Pipe links to the room's other legs, by their region (kept by the server's Cascade). */
  readonly links = new Map<string, PipeLink>();
  /** Producers piped in from other legs, by producer id. */
  readonly remoteProducers = new Map<string, RemoteProducer>();
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
    this.region = options.region;
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
    for (const link of this.links.values()) {
      const counts = link.counts;
      units += counts.pipeTransports + counts.pipeConsumers + counts.pipeProducers;
    }
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
    this.broadcast('peerJoined', { peerId: peer.id, identity: peer.identity, region: this.region }, peer.id);
    peer.on('newProducer', (producer) => {
      this.broadcast('newProducer', this.localProducerInfo(peer, producer), peer.id);
      this.emit('localProducer', peer, producer);
    });
    peer.on('producerClosed', (producerId) => {
      this.broadcast('producerClosed', { producerId, peerId: peer.id, reason: 'closed' }, peer.id);
      this.emit('localProducerClosed', producerId);
    });
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
      this.broadcast('peerLeft', { peerId: peer.id, reason: 'left' }, peer.id);
      this.emit('loadChanged');
      if (this.peers.size === 0 && !this.replacing) this.close('empty');
    });
    this.emit('loadChanged');
  }

  /** Every producer of the room, other legs' included, for a peer that joins after they were created. */
  listProducers(): ServerProducerInfo[] {
    const infos: ServerProducerInfo[] = [];
    for (const peer of this.peers.values()) {
      for (const producer of peer.producers.values()) infos.push(this.localProducerInfo(peer, producer));
    }
    for (const remote of this.remoteProducers.values()) infos.push(remoteProducerInfo(remote));
    return infos;
  }

  findProducer(producerId: string): { peer: ProducerOwner; producer: MsProducer } | undefined {
    for (const peer of this.peers.values()) {
      const producer = peer.producers.get(producerId);
      if (producer) return { peer, producer };
    }
    const remote = this.remoteProducers.get(producerId);
    // A pipe producer carries what its origin received: its consumers count from the start.
    if (remote)
      return { peer: { id: remote.peerId, hasCarriedMedia: () => true }, producer: remote.producer };
    return undefined;
  }

  /**
   * A producer of another leg arrived over a pipe: this leg's peers see its peer join (with its first
   * producer) and the producer appear. A producer id already known is ignored (a replayed message).
   */
  addRemoteProducer(remote: RemoteProducer): void {
    if (this.closedFlag || this.remoteProducers.has(remote.producer.id)) return;
    const firstOfPeer = ![...this.remoteProducers.values()].some((r) => r.peerId === remote.peerId);
    this.remoteProducers.set(remote.producer.id, remote);
    if (firstOfPeer) {
      this.broadcast('peerJoined', {
        peerId: remote.peerId,
        identity: remote.identity,
        region: remote.region,
      });
    }
    this.broadcast('newProducer', remoteProducerInfo(remote));
    this.emit('loadChanged');
  }

  /**
   * A piped-in producer closed: its origin closed it (`closed`), or its leg was cut off from this one
   * (`leg_lost`), which peers hear so they can tell a peer that left from one that is rejoining. Its
   * peer leaves with its last producer, for the same reason.
   */
  removeRemoteProducer(producerId: string, reason: ProducerCloseReason): void {
    const remote = this.remoteProducers.get(producerId);
    if (!remote) return;
    this.remoteProducers.delete(producerId);
    if (this.closedFlag) return;
    this.broadcast('producerClosed', { producerId, peerId: remote.peerId, reason });
    if (![...this.remoteProducers.values()].some((r) => r.peerId === remote.peerId)) {
      this.broadcast('peerLeft', {
        peerId: remote.peerId,
        reason: reason === 'closed' ? 'left' : 'leg_lost',
      });
    }
    this.emit('loadChanged');
  }

  /** A piped-in producer paused or resumed at its origin. */
  remotePaused(producerId: string, paused: boolean): void {
    if (this.remoteProducers.has(producerId)) this.broadcast('producerPaused', { producerId, paused });
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

  private localProducerInfo(peer: Peer, producer: MsProducer): ServerProducerInfo {
    return {
      producerId: producer.id,
      peerId: peer.id,
      identity: peer.identity,
      region: this.region,
      kind: producer.kind,
      paused: producer.paused,
    };
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
    for (const link of [...this.links.values()]) link.close('closed');
    this.links.clear();
    this.remoteProducers.clear();
    this.router.close();
    this.logger.info({ reason }, 'room closed');
    this.emit('close', reason);
  }
}

function remoteProducerInfo(remote: RemoteProducer): ServerProducerInfo {
  const { producer, peerId, identity, region } = remote;
  return { producerId: producer.id, peerId, identity, region, kind: producer.kind, paused: producer.paused };
}
