/**
 * One joined participant: its transports, producers and consumers on the room's router. Every object
 * is removed from its map when mediasoup closes it (transport gone, producer gone), so the maps are
 * always what exists. `close()` is idempotent and cascades: closing the transports closes their
 * producers and consumers in mediasoup, which in turn closes other peers' consumers of those producers.
 */
import { EventEmitter } from 'node:events';
import type { PeerLimits } from './config';
import { INITIAL_OUTGOING_BITRATE_BPS, KEY_FRAME_REQUEST_DELAY_MS, MAX_INCOMING_BITRATE_BPS } from './codecs';
import type {
  EngineWorker,
  MediaKind,
  MediasoupObject,
  MsConsumer,
  MsProducer,
  MsRouter,
  MsWebRtcTransport,
} from './engine';
import { clientInput } from './clientInput';
import type { Logger } from './logger';
import {
  ProtocolError,
  type NotificationFrame,
  type NotificationName,
  type Notifications,
} from '../protocol/signaling';
import { rtpClaimConflict, rtpClaims, type RtpClaims } from './rtpClaims';

export type TransportDirection = 'send' | 'recv';

export interface PeerTransport {
  readonly transport: MsWebRtcTransport;
  readonly direction: TransportDirection;
}

/** Why a peer went away; `left` and `disconnected` come from the client, the rest from the server. */
export type PeerCloseReason = 'left' | 'disconnected' | 'room_closed' | 'replaced';

type PeerEvents = {
  close: [reason: PeerCloseReason];
  newProducer: [producer: MsProducer];
  producerClosed: [producerId: string];
  producerPaused: [producerId: string, paused: boolean];
  /** One of this peer's producers received its first RTP packet (its consumers start to count). */
  mediaStarted: [producerId: string];
  /** Transports or counted consumers changed: the server's load moved. */
  loadChanged: [];
};

export type NotificationSink = <N extends NotificationName>(frame: NotificationFrame<N>) => void;

/** Whose a consumable producer is: a peer of this leg, or a remote peer of another leg (cascading). */
export interface ProducerOwner {
  readonly id: string;
  hasCarriedMedia(producerId: string): boolean;
}

export interface PeerOptions {
  /** The media token's peer id. */
  readonly id: string;
  /** Who the participant is (the join token's subject): a room holds one peer per identity. */
  readonly identity: string;
  readonly displayName?: string;
  /** The room's router; the peer's transports are created on it. */
  readonly router: MsRouter;
  /** The worker `router` lives on. */
  readonly worker: EngineWorker;
  readonly limits: PeerLimits;
  /** Where the peer's notifications go: its signaling session. */
  readonly sink: NotificationSink;
  /** Carries the room's and the peer's ids. */
  readonly logger: Logger;
}

export class Peer extends EventEmitter<PeerEvents> {
  readonly id: string;
  readonly identity: string;
  readonly displayName: string | undefined;
  readonly logger: Logger;
  readonly transports = new Map<string, PeerTransport>();
  readonly producers = new Map<string, MsProducer>();
  readonly consumers = new Map<string, MsConsumer>();
  /** Transports whose DTLS parameters were accepted: mediasoup takes them once per transport. */
  private readonly connectedTransports = new Set<string>();
  /** What each producer's RTP parameters hold on its transport (see rtpClaims.ts). */
  private readonly producerClaims = new Map<string, { transportId: string; claims: RtpClaims }>();
  /** This peer's producers that have received media. */
  private readonly producersWithMedia = new Set<string>();
  /** The consumer this peer holds of each producer: one per (peer, producer). */
  private readonly consumerByProducer = new Map<string, string>();
  /** Producers a consume request is in flight for, so a second one cannot slip in during its await. */
  private readonly consuming = new Set<string>();
  /** Consumers whose producer has carried media: the ones that cost the server (load.ts). */
  private readonly countedConsumers = new Set<string>();
  private readonly router: MsRouter;
  private readonly worker: EngineWorker;
  private readonly limits: PeerLimits;
  private readonly sink: NotificationSink;
  private closedFlag = false;

  constructor(options: PeerOptions) {
    super();
    this.id = options.id;
    this.identity = options.identity;
    this.displayName = options.displayName;
    this.router = options.router;
    this.worker = options.worker;
    this.limits = options.limits;
    this.sink = options.sink;
    this.logger = options.logger;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Load units this peer costs the server (see load.ts). */
  get loadUnits(): number {
    return this.transports.size + this.countedConsumers.size;
  }

  /** Whether this peer's producer `producerId` has received media. */
  hasCarriedMedia(producerId: string): boolean {
    return this.producersWithMedia.has(producerId);
  }

  /** Another peer's producer started carrying media: this peer's consumer of it (if any) now counts. */
  countConsumerOf(producerId: string): void {
    const consumerId = this.consumerByProducer.get(producerId);
    if (consumerId === undefined || this.countedConsumers.has(consumerId)) return;
    this.countedConsumers.add(consumerId);
    this.emit('loadChanged');
  }

  notify<N extends NotificationName>(notification: N, data: Notifications[N]): void {
    if (!this.closedFlag) this.sink({ notification, data });
  }

  close(reason: PeerCloseReason): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    // Each transport.close() emits 'transportclose' on its producers and consumers synchronously, so the
    // room tells the other peers about every producer that goes; the clears are a guard, not the cleanup.
    for (const { transport } of [...this.transports.values()]) transport.close();
    this.transports.clear();
    this.producers.clear();
    this.producerClaims.clear();
    this.producersWithMedia.clear();
    this.consumers.clear();
    this.consumerByProducer.clear();
    this.countedConsumers.clear();
    this.logger.info({ reason }, 'peer closed');
    this.emit('close', reason);
  }

  async createWebRtcTransport(direction: TransportDirection): Promise<MsWebRtcTransport> {
    this.assertOpen();
    if (this.transports.size >= this.limits.maxTransports) {
      throw new ProtocolError('forbidden', `a peer may hold at most ${this.limits.maxTransports} transports`);
    }
    const transport = await this.worker.createWebRtcTransport(this.router, {
      initialAvailableOutgoingBitrate: INITIAL_OUTGOING_BITRATE_BPS,
    });
    if (this.closedFlag) {
      // The peer left while the worker created the transport.
      transport.close();
      throw new ProtocolError('not_joined', 'the peer left while its transport was being created');
    }
    this.transports.set(transport.id, { transport, direction });
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') {
        this.logger.warn({ transport: transport.id, state }, 'transport DTLS ended; closing it');
        this.closeTransport(transport.id);
      }
    });
    transport.on('routerclose', () => this.closeTransport(transport.id));
    if (direction === 'send') {
      await transport.setMaxIncomingBitrate(MAX_INCOMING_BITRATE_BPS).catch((err: Error) => {
        this.logger.warn({ transport: transport.id, err: err.message }, 'cannot cap incoming bitrate');
      });
    }
    this.logger.debug({ transport: transport.id, direction }, 'transport created');
    this.emit('loadChanged');
    return transport;
  }

  /**
   * Gives the transport the client's DTLS parameters. A second call is the client's mistake, refused
   * here: the worker would refuse it as its own failure ("connect() already called").
   */
  async connectTransport(entry: PeerTransport, dtlsParameters: MediasoupObject): Promise<void> {
    const { id } = entry.transport;
    if (this.connectedTransports.has(id)) {
      throw new ProtocolError('bad_request', `transport "${id}" is already connected; create a new one`);
    }
    await clientInput(() => entry.transport.connect({ dtlsParameters }));
    this.connectedTransports.add(id);
  }

  closeTransport(transportId: string): void {
    const entry = this.transports.get(transportId);
    if (!entry) return;
    this.transports.delete(transportId);
    this.connectedTransports.delete(transportId);
    entry.transport.close();
    // Producers and consumers of the transport get 'transportclose' and remove themselves.
    this.emit('loadChanged');
  }

  async produce(
    transport: PeerTransport,
    kind: MediaKind,
    rtpParameters: MediasoupObject,
    appData: Record<string, unknown>,
  ): Promise<MsProducer> {
    this.assertOpen();
    assertDirection(transport, 'send', 'produce');
    if (this.producers.size >= this.limits.maxProducers) {
      throw new ProtocolError('forbidden', `a peer may hold at most ${this.limits.maxProducers} producers`);
    }
    const transportId = transport.transport.id;
    const claims = rtpClaims(rtpParameters);
    const held = [...this.producerClaims].filter(([, p]) => p.transportId === transportId);
    const conflict = rtpClaimConflict(
      claims,
      held.map(([id, p]) => [id, p.claims] as const),
    );
    if (conflict) throw new ProtocolError('bad_request', conflict);
    const producer = await clientInput(() =>
      transport.transport.produce({
        kind,
        rtpParameters,
        keyFrameRequestDelay: KEY_FRAME_REQUEST_DELAY_MS,
        appData: { ...appData, peerId: this.id },
      }),
    );
    if (this.closedFlag || producer.closed) {
      producer.close();
      throw new ProtocolError('not_joined', 'the peer left while its producer was being created');
    }
    this.producers.set(producer.id, producer);
    this.producerClaims.set(producer.id, { transportId, claims });
    producer.on('transportclose', () => this.forgetProducer(producer.id));
    producer.on('score', (score) => {
      if (
        score.length === 0 ||
        !this.producers.has(producer.id) ||
        this.producersWithMedia.has(producer.id)
      ) {
        return;
      }
      this.producersWithMedia.add(producer.id);
      this.emit('mediaStarted', producer.id);
    });
    this.logger.info({ producer: producer.id, kind }, 'producer created');
    this.emit('newProducer', producer);
    return producer;
  }

  closeProducer(producerId: string): void {
    const producer = this.producers.get(producerId);
    if (!producer) return;
    producer.close();
    this.forgetProducer(producerId);
  }

  async setProducerPaused(producer: MsProducer, paused: boolean): Promise<void> {
    if (producer.paused === paused) return;
    if (paused) await producer.pause();
    else await producer.resume();
    this.emit('producerPaused', producer.id, paused);
  }

  /**
   * Consumes `source.producer` (held by `source.peer`, a peer of the same room) on a recv transport.
   * One consumer per producer, never of the peer's own: that is all an honest client asks for, and it
   * bounds what a peer can hold by what the room sends. The consumer counts as load once its producer
   * has carried media (load.ts).
   */
  async consume(
    transport: PeerTransport,
    source: { readonly peer: ProducerOwner; readonly producer: MsProducer },
    rtpCapabilities: MediasoupObject,
  ): Promise<MsConsumer> {
    this.assertOpen();
    assertDirection(transport, 'recv', 'consume');
    const producerId = source.producer.id;
    if (source.peer === this) {
      throw new ProtocolError(
        'bad_request',
        `producer "${producerId}" is this peer's own; a peer does not consume itself`,
      );
    }
    const existing = this.consumerByProducer.get(producerId);
    if (existing !== undefined) {
      throw new ProtocolError(
        'bad_request',
        `producer "${producerId}" is already consumed by this peer (consumer "${existing}")`,
      );
    }
    if (this.consuming.has(producerId)) {
      throw new ProtocolError(
        'bad_request',
        `producer "${producerId}" is already being consumed by this peer`,
      );
    }
    if (this.consumers.size >= this.limits.maxConsumers) {
      throw new ProtocolError('forbidden', `a peer may hold at most ${this.limits.maxConsumers} consumers`);
    }
    if (!this.router.canConsume({ producerId, rtpCapabilities })) {
      throw new ProtocolError(
        'bad_request',
        `producer "${producerId}" cannot be consumed with these rtpCapabilities`,
      );
    }
    // Paused until the client has its track wired up and says so (resumeConsumer): no RTP is sent that
    // the client would drop, and the first video packet after resume is a key frame.
    this.consuming.add(producerId);
    let consumer: MsConsumer;
    try {
      consumer = await clientInput(() =>
        transport.transport.consume({ producerId, rtpCapabilities, paused: true }),
      );
    } finally {
      this.consuming.delete(producerId);
    }
    if (this.closedFlag || consumer.closed) {
      consumer.close();
      throw new ProtocolError('not_found', `producer "${producerId}" closed while it was being consumed`);
    }
    this.consumers.set(consumer.id, consumer);
    this.consumerByProducer.set(producerId, consumer.id);
    consumer.on('transportclose', () => this.forgetConsumer(consumer.id));
    consumer.on('producerclose', () => {
      if (this.forgetConsumer(consumer.id)) {
        this.notify('consumerClosed', { consumerId: consumer.id, producerId: consumer.producerId });
      }
    });
    this.logger.debug({ consumer: consumer.id, producer: producerId }, 'consumer created');
    // Read after the await: the producer may have started carrying media meanwhile, and the room's
    // mediaStarted pass did not see this consumer yet.
    if (source.peer.hasCarriedMedia(producerId)) {
      this.countedConsumers.add(consumer.id);
      this.emit('loadChanged');
    }
    return consumer;
  }

  private forgetProducer(producerId: string): void {
    this.producerClaims.delete(producerId);
    this.producersWithMedia.delete(producerId);
    if (!this.producers.delete(producerId)) return;
    this.logger.info({ producer: producerId }, 'producer closed');
    this.emit('producerClosed', producerId);
  }

  private forgetConsumer(consumerId: string): boolean {
    const consumer = this.consumers.get(consumerId);
    if (!consumer) return false;
    this.consumers.delete(consumerId);
    if (this.consumerByProducer.get(consumer.producerId) === consumerId) {
      this.consumerByProducer.delete(consumer.producerId);
    }
    if (this.countedConsumers.delete(consumerId)) this.emit('loadChanged');
    return true;
  }

  private assertOpen(): void {
    if (this.closedFlag) throw new ProtocolError('not_joined', 'the peer has left the room');
  }
}

/** Media flows one way per transport: producers on send transports, consumers on recv ones. */
function assertDirection(
  transport: PeerTransport,
  wanted: 'send' | 'recv',
  action: 'produce' | 'consume',
): void {
  if (transport.direction !== wanted) {
    throw new ProtocolError(
      'bad_request',
      `transport "${transport.transport.id}" is a ${transport.direction} transport; ${action} on a ${wanted} transport`,
    );
  }
}
