/**
 * The media side of one connection to one media server: a mediasoup-client Device loaded with that
 * server's router capabilities, a send transport (created at the first local track), a receive
 * transport, and the producers and consumers on them.
 *
 * Producers are created with `stopTracks: false`: the app's camera and microphone tracks outlive any
 * one server, and a rejoin produces the very same tracks on the next server. Consumers die with their
 * server; the session consumes again after a rejoin and reports fresh remote tracks.
 */
import type { Device, types as ms } from 'mediasoup-client';
import type { IceServer } from '../protocol/join';
import { producerInfoSchema, type TransportInfo } from '../protocol/signaling';
import { type InboundSample, inboundBytes } from './FailureDetector';
import { TypedEmitter } from './TypedEmitter';
import { type Timer, unrefTimer } from './timers';
import type { SignalingChannel, NotificationEvent } from './SignalingChannel';

export type MediaKind = 'audio' | 'video';

/** Who a remote track is from. Every remote track event carries it. */
export interface RemotePeer {
  /** The remote peer's id in the room: it changes each time that participant joins again. */
  readonly peerId: string;
  /**
   * Who the participant is (its join token's subject): the same across its rejoins, so an app can
   * tell that the peer id that appeared is someone who was there before. Undefined only from a media
   * server older than this field.
   */
  readonly identity: string | undefined;
  /**
   * The region the remote peer is joined to, such as `eu-west-1`: the region of the media server this
   * session is on for a peer there, another region's for a peer whose media is piped in from its own
   * region's leg of the room (cascading). It changes when that peer rejoins elsewhere, for example
   * after its region failed. Undefined only from a media server older than this field.
   */
  readonly region: string | undefined;
}

export interface RemoteTrackEvent extends RemotePeer {
  readonly producerId: string;
  readonly consumerId: string;
  readonly kind: MediaKind;
  readonly track: MediaStreamTrack;
}

/**
 * `peer_lost`: the remote peer's leg of the room (in another region) was cut off from this session's
 * server (that region or its media server failed), so the peer is most likely rejoining elsewhere and
 * comes back as a new `remoteTrack` with a new peer id, the same identity and its new region.
 * `peer_left` and `producer_closed`: the peer left, or stopped that track, itself.
 */
export type TrackEndReason =
  'producer_closed' | 'peer_left' | 'peer_lost' | 'consumer_closed' | 'reconnecting' | 'closed';

export interface TrackEndedEvent extends RemotePeer {
  readonly producerId: string;
  readonly consumerId: string;
  readonly kind: MediaKind;
  readonly reason: TrackEndReason;
}

export interface RemotePausedEvent extends RemotePeer {
  readonly producerId: string;
  readonly kind: MediaKind;
  readonly paused: boolean;
}

export interface MediaConnectionEvents {
  remoteTrack: RemoteTrackEvent;
  trackEnded: TrackEndedEvent;
  remotePaused: RemotePausedEvent;
  iceFailed: { direction: 'send' | 'recv' };
  /** ICE on one transport went `disconnected` (true) or back to connected (false). */
  iceDisconnected: { direction: 'send' | 'recv'; disconnected: boolean };
  /** A remote producer could not be consumed; the call goes on without it. */
  consumeFailed: { producerId: string; error: Error };
}

interface RemoteConsumer {
  readonly consumer: ms.Consumer;
  readonly peer: RemotePeer;
}

export interface MediaConnectionOptions {
  /** The joined signaling channel to the media server. */
  readonly channel: SignalingChannel;
  /** A fresh Device: it loads this server's router capabilities. */
  readonly device: Device;
  /** From the server's `join` answer. */
  readonly routerRtpCapabilities: unknown;
  /** Open a receive transport and consume the other peers' producers. */
  readonly consume: boolean;
  /** This peer's own id: its producers are never consumed back. */
  readonly ownPeerId: string;
  /** The join answer's TURN relay (the serving region's), for both transports. @default none */
  readonly iceServers?: readonly IceServer[];
  /** `relay`: only relayed candidates (client config `iceTransportPolicy`). @default 'all' */
  readonly iceTransportPolicy?: 'all' | 'relay';
}

const SOURCE_BY_KIND = { video: 'camera', audio: 'mic' } as const;

/**
 * How long a transport may stay ICE-`disconnected` before it counts as failed. libwebrtc reports
 * `disconnected` after a few seconds without STUN answers and recovers from short blips by itself,
 * but reaches `failed` only after ~30 s; a media path that is blackholed (its server dead, the
 * signaling socket still up through the LB) should not cost the call that long.
 */
const ICE_DISCONNECTED_GRACE_MS = 8_000;

export class MediaConnection extends TypedEmitter<MediaConnectionEvents> {
  private sendTransport: ms.Transport | undefined;
  private sendTransportPending: Promise<ms.Transport> | undefined;
  private recvTransport: ms.Transport | undefined;
  private readonly producers = new Map<MediaKind, ms.Producer>();
  private readonly consumers = new Map<string, RemoteConsumer>();
  /** Producers being consumed right now: a `newProducer` can race the initial `listProducers`. */
  private readonly consuming = new Set<string>();
  private closed = false;

  private readonly channel: SignalingChannel;
  private readonly device: Device;
  private readonly ownPeerId: string;
  private readonly iceServers: RTCIceServer[];
  private readonly iceTransportPolicy: 'all' | 'relay';

  private constructor(
    options: Pick<
      MediaConnectionOptions,
      'channel' | 'device' | 'ownPeerId' | 'iceServers' | 'iceTransportPolicy'
    >,
  ) {
    super();
    this.channel = options.channel;
    this.device = options.device;
    this.ownPeerId = options.ownPeerId;
    this.iceServers = (options.iceServers ?? []).map((s) => ({
      urls: [...s.urls],
      ...(s.username !== undefined && { username: s.username }),
      ...(s.credential !== undefined && { credential: s.credential }),
    }));
    this.iceTransportPolicy = options.iceTransportPolicy ?? 'all';
  }

  /** Loads the Device with the router's capabilities and, when consuming, opens the receive transport. */
  static async create(options: MediaConnectionOptions): Promise<MediaConnection> {
    const { device, routerRtpCapabilities } = options;
    await device.load({ routerRtpCapabilities: routerRtpCapabilities as ms.RtpCapabilities });
    const media = new MediaConnection(options);
    if (options.consume) media.recvTransport = await media.createTransport('recv');
    return media;
  }

  get remoteTracks(): RemoteTrackEvent[] {
    return [...this.consumers.values()].map(({ consumer, peer }) => toRemoteTrack(consumer, peer));
  }

  /**
   * The inbound byte count of this server's transports (RTP, RTCP and STUN), for the failure
   * detector; undefined while no transport exists.
   */
  async inboundSample(): Promise<InboundSample | undefined> {
    const transports = [this.sendTransport, this.recvTransport].filter(
      (t): t is ms.Transport => t !== undefined && !t.closed,
    );
    if (transports.length === 0 || this.closed) return undefined;
    const reports = await Promise.all(transports.map((t) => t.getStats()));
    return { bytesReceived: inboundBytes(reports) };
  }

  /** Makes the local `kind` track `track` (null: stop sending it), paused or not. Idempotent. */
  async setTrack(kind: MediaKind, track: MediaStreamTrack | null, paused: boolean): Promise<void> {
    const producer = this.producers.get(kind);
    if (!track) {
      if (!producer) return;
      this.producers.delete(kind);
      producer.close();
      await this.channel.request('closeProducer', { producerId: producer.id });
      return;
    }
    if (producer) {
      if (producer.track !== track) await producer.replaceTrack({ track });
      await this.setPaused(kind, paused);
      return;
    }
    const transport = await this.ensureSendTransport();
    const created = await transport.produce({
      track,
      stopTracks: false,
      appData: { source: SOURCE_BY_KIND[kind] },
    });
    this.producers.set(kind, created);
    if (paused) await this.setPaused(kind, true);
  }

  async setPaused(kind: MediaKind, paused: boolean): Promise<void> {
    const producer = this.producers.get(kind);
    if (!producer) return;
    if (paused) producer.pause();
    else producer.resume();
    await this.channel.request('setProducerPaused', { producerId: producer.id, paused });
  }

  /** Consumes every producer already in the room. */
  async consumeExisting(): Promise<void> {
    const { producers } = await this.channel.request('listProducers', {});
    await Promise.all(producers.map((p) => this.consume(p)));
  }

  handleNotification(notification: NotificationEvent): void {
    switch (notification.name) {
      case 'newProducer':
        void this.consume(notification.data);
        break;
      case 'producerClosed': {
        // A server older than `reason` sends none: the producer just closed.
        const { producerId, reason } = notification.data;
        this.dropConsumers(
          (c) => c.consumer.producerId === producerId,
          reason === 'leg_lost' ? 'peer_lost' : 'producer_closed',
        );
        break;
      }
      case 'consumerClosed':
        this.dropConsumers((c) => c.consumer.id === notification.data.consumerId, 'consumer_closed');
        break;
      case 'peerLeft': {
        const { peerId, reason } = notification.data;
        this.dropConsumers(
          (c) => c.peer.peerId === peerId,
          reason === 'leg_lost' ? 'peer_lost' : 'peer_left',
        );
        break;
      }
      case 'producerPaused': {
        const { producerId, paused } = notification.data;
        const found = [...this.consumers.values()].find((c) => c.consumer.producerId === producerId);
        if (found)
          this.emit('remotePaused', {
            ...found.peer,
            producerId,
            kind: found.consumer.kind as MediaKind,
            paused,
          });
        break;
      }
      default:
        break;
    }
  }

  /** Closes transports, producers and consumers; the local tracks stay alive for the next server. */
  close(reason: TrackEndReason): void {
    if (this.closed) return;
    this.closed = true;
    this.dropConsumers(() => true, reason);
    for (const producer of this.producers.values()) producer.close();
    this.producers.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
  }

  /** `received` is what the server sent: parsed here, so a malformed producer is skipped, named. */
  private async consume(received: unknown): Promise<void> {
    const transport = this.recvTransport;
    const parsed = producerInfoSchema.safeParse(received);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.join('.') || 'producer';
      const error = new Error(`a remote producer's ${where} ${issue?.message ?? 'is invalid'}: not consumed`);
      const claimed = (received as { producerId?: unknown } | null)?.producerId;
      const producerId = typeof claimed === 'string' ? claimed.slice(0, 128) : '(none)';
      if (!this.closed) this.emit('consumeFailed', { producerId, error });
      return;
    }
    const info = parsed.data;
    if (!transport || this.closed || info.peerId === this.ownPeerId) return;
    if (
      this.consuming.has(info.producerId) ||
      [...this.consumers.values()].some((c) => c.consumer.producerId === info.producerId)
    ) {
      return;
    }
    this.consuming.add(info.producerId);
    try {
      const answer = await this.channel.request('consume', {
        transportId: transport.id,
        producerId: info.producerId,
        rtpCapabilities: this.device.recvRtpCapabilities,
      });
      const consumer = await transport.consume({
        id: answer.consumerId,
        producerId: answer.producerId,
        kind: answer.kind,
        rtpParameters: answer.rtpParameters as ms.RtpParameters,
      });
      if (this.closed) {
        consumer.close();
        return;
      }
      const peer: RemotePeer = { peerId: answer.peerId, identity: info.identity, region: info.region };
      this.consumers.set(consumer.id, { consumer, peer });
      // Consumers start paused on the server so no keyframe is lost before the client is ready.
      await this.channel.request('resumeConsumer', { consumerId: consumer.id });
      this.emit('remoteTrack', toRemoteTrack(consumer, peer));
    } catch (err) {
      if (!this.closed) this.emit('consumeFailed', { producerId: info.producerId, error: err as Error });
    } finally {
      this.consuming.delete(info.producerId);
    }
  }

  private dropConsumers(match: (c: RemoteConsumer) => boolean, reason: TrackEndReason): void {
    for (const [id, entry] of [...this.consumers]) {
      if (!match(entry)) continue;
      this.consumers.delete(id);
      entry.consumer.close();
      const { consumer, peer } = entry;
      this.emit('trackEnded', {
        ...peer,
        producerId: consumer.producerId,
        consumerId: id,
        kind: consumer.kind as MediaKind,
        reason,
      });
    }
  }

  private ensureSendTransport(): Promise<ms.Transport> {
    this.sendTransportPending ??= this.createTransport('send').then((t) => (this.sendTransport = t));
    return this.sendTransportPending;
  }

  private async createTransport(direction: 'send' | 'recv'): Promise<ms.Transport> {
    const info: TransportInfo = await this.channel.request('createWebRtcTransport', { direction });
    const options = {
      id: info.id,
      iceParameters: info.iceParameters as ms.IceParameters,
      iceCandidates: info.iceCandidates as ms.IceCandidate[],
      dtlsParameters: info.dtlsParameters as ms.DtlsParameters,
      // The server's own candidates are always there; the relay adds relayed ones (and is the only path
      // under `relay`).
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
    };
    const transport =
      direction === 'send'
        ? this.device.createSendTransport(options)
        : this.device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.channel
        .request('connectWebRtcTransport', { transportId: transport.id, dtlsParameters })
        .then(() => callback(), errback);
    });
    transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      this.channel
        .request('produce', {
          transportId: transport.id,
          kind,
          rtpParameters,
          appData: appData as { source?: 'camera' | 'mic' },
        })
        .then(({ producerId }) => callback({ id: producerId }), errback);
    });
    let disconnectedTimer: Timer | undefined;
    transport.on('connectionstatechange', (state) => {
      clearTimeout(disconnectedTimer);
      if (this.closed) return;
      if (state === 'disconnected' || state === 'connected')
        this.emit('iceDisconnected', { direction, disconnected: state === 'disconnected' });
      if (state === 'failed') this.emit('iceFailed', { direction });
      if (state === 'disconnected') {
        disconnectedTimer = unrefTimer(
          setTimeout(() => !this.closed && this.emit('iceFailed', { direction }), ICE_DISCONNECTED_GRACE_MS),
        );
      }
    });
    transport.observer.once('close', () => clearTimeout(disconnectedTimer));
    return transport;
  }
}

function toRemoteTrack(consumer: ms.Consumer, peer: RemotePeer): RemoteTrackEvent {
  return {
    ...peer,
    producerId: consumer.producerId,
    consumerId: consumer.id,
    kind: consumer.kind as MediaKind,
    track: consumer.track,
  };
}
