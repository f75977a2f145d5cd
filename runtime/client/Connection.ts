/**
 * One connection to one media server: the join answer that placed it, its signaling channel and, once
 * needed, its media. It turns what the channel and the media report into the few events an owner acts
 * on: `lost` (with the reason a rejoin will carry), `replaced`, the media events, and `warning`.
 *
 * Policy:
 * - A connection is lost once. The first loss (socket closed, ping or request unanswered, ICE failed,
 *   a `rejoin` notice) or replacement is remembered in `lostReason` and reported; later ones are not.
 *   Whoever holds a connection that is not live yet (an attempt still setting it up) reads
 *   `lostReason` instead of listening, so a connection never needs to know whether it is the live one.
 * - `close()` is the teardown: intentional, idempotent, and silent (no `lost` follows). The media is
 *   closed with the reason remote tracks report as `trackEnded`; the app's local tracks survive it.
 */
import { SIGNALING_CLOSE } from '../protocol/signaling';
import type { JoinAnswer } from './joinApi';
import {
  MediaConnection,
  type RemotePausedEvent,
  type RemoteTrackEvent,
  type TrackEndedEvent,
} from './MediaConnection';
import type { Platform } from './platform';
import {
  type DetectionConfig,
  type DetectionSignal,
  FailureDetector,
  type SuspectedEvent,
} from './FailureDetector';
import type { NotificationEvent, SignalingChannel } from './SignalingChannel';
import { TypedEmitter } from './TypedEmitter';

/** Why a connection was lost; a rejoin carries it in `reconnecting` and `reconnected`. */
export type RejoinReason =
  | 'signaling_closed'
  | 'ping_timeout'
  | 'request_timeout'
  | 'ice_failed'
  | 'room_moved'
  | 'server_draining'
  | 'region_evacuated'
  | 'worker_died'
  | 'room_closed'
  // A make-before-break switch, named after the signal that detected the failure (FailureDetector.ts).
  | DetectionSignal;

export interface ConnectionEvents {
  lost: { reason: RejoinReason };
  /** Another session of the same identity joined the room: this one must end, not rejoin. */
  replaced: Record<string, never>;
  remoteTrack: RemoteTrackEvent;
  trackEnded: TrackEndedEvent;
  remotePaused: RemotePausedEvent;
  /** Something odd that did not break the connection (an unconsumable producer, a malformed frame). */
  warning: { message: string };
  /** The failure detector suspects this server (see FailureDetector.ts); only while watched. */
  suspected: SuspectedEvent;
  /** The suspicion cleared: the server answers again. */
  cleared: { afterMs: number };
}

export interface ConnectionOptions {
  readonly answer: JoinAnswer;
  /** API base URL that answered the join. */
  readonly apiUrl: string;
  /** An open channel to `answer.signalingUrl`; the connection owns it from now on. */
  readonly channel: SignalingChannel;
  readonly createDevice: Platform['createDevice'];
  /** Receive the other peers' media once media exists. */
  readonly consume: boolean;
  /** Client config `iceTransportPolicy`; the relay itself comes with `answer.iceServers`. @default 'all' */
  readonly iceTransportPolicy?: 'all' | 'relay';
}

export class Connection extends TypedEmitter<ConnectionEvents> {
  readonly answer: JoinAnswer;
  readonly apiUrl: string;
  readonly channel: SignalingChannel;
  private joinedAs: { peerId: string; routerRtpCapabilities: unknown } | undefined;
  private mediaConnection: MediaConnection | undefined;
  private lost: RejoinReason | undefined;
  private closed = false;
  private detector: FailureDetector | undefined;
  private readonly createDevice: Platform['createDevice'];
  private readonly consume: boolean;
  private readonly iceTransportPolicy: 'all' | 'relay' | undefined;

  constructor(options: ConnectionOptions) {
    super();
    this.answer = options.answer;
    this.apiUrl = options.apiUrl;
    this.channel = options.channel;
    this.createDevice = options.createDevice;
    this.consume = options.consume;
    this.iceTransportPolicy = options.iceTransportPolicy;
    this.channel.on('notification', (n) => this.onNotification(n));
    this.channel.on('lost', ({ reason, closeCode }) => {
      if (closeCode === SIGNALING_CLOSE.replaced) this.onReplaced();
      else this.lose(reason);
    });
    this.channel.on('malformed', ({ detail }) => this.emit('warning', { message: `signaling: ${detail}` }));
  }

  /** This peer's id on the server; empty until `join` succeeded. */
  get peerId(): string {
    return this.joinedAs?.peerId ?? '';
  }

  get media(): MediaConnection | undefined {
    return this.mediaConnection;
  }

  /** The first loss, or undefined while the connection lives; a replacement counts as `signaling_closed`. */
  get lostReason(): RejoinReason | undefined {
    return this.lost;
  }

  /** Whether the failure detector suspects this server now (false when not watched). */
  get suspected(): boolean {
    return this.detector?.suspected ?? false;
  }

  /**
   * Starts the failure detector on this connection (the live one is watched). Idempotent.
   * `clock` is for tests that run the detector's time faster than the wall clock.
   */
  watch(config: DetectionConfig, clock?: () => number): void {
    if (this.detector || this.closed) return;
    const detector = new FailureDetector({
      ...config,
      clock,
      sample: async () => this.mediaConnection?.inboundSample(),
      pingNow: () => this.channel.pingNow(),
    });
    this.detector = detector;
    this.channel.on('pingSent', () => detector.pingSent());
    this.channel.on('pongReceived', () => detector.pongReceived());
    const ice = new Map<string, boolean>();
    this.onIce = ({ direction, disconnected }) => {
      ice.set(direction, disconnected);
      detector.iceState([...ice.values()].some(Boolean));
    };
    detector.on('suspected', (e) => this.emit('suspected', e));
    detector.on('cleared', (e) => this.emit('cleared', e));
    detector.start();
  }

  private onIce: ((e: { direction: string; disconnected: boolean }) => void) | undefined;

  /** Joins the room on the server with the answer's media token; the server now knows this peer. */
  async join(displayName?: string): Promise<void> {
    const { peerId, routerRtpCapabilities } = await this.channel.request('join', {
      token: this.answer.mediaToken,
      ...(displayName ? { displayName } : {}),
    });
    this.joinedAs = { peerId, routerRtpCapabilities };
  }

  /** This server's media, created at first need (a Device loads one router's capabilities). */
  async ensureMedia(): Promise<MediaConnection> {
    if (this.mediaConnection) return this.mediaConnection;
    const device = await this.createDevice();
    const media = await MediaConnection.create({
      channel: this.channel,
      device,
      routerRtpCapabilities: this.joinedAs?.routerRtpCapabilities,
      consume: this.consume,
      ownPeerId: this.peerId,
      iceServers: this.answer.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
    });
    if (this.mediaConnection) {
      // Two controls raced to create it; keep the first.
      media.close('closed');
      return this.mediaConnection;
    }
    this.mediaConnection = media;
    media.on('remoteTrack', (e) => this.emit('remoteTrack', e));
    media.on('trackEnded', (e) => this.emit('trackEnded', e));
    media.on('remotePaused', (e) => this.emit('remotePaused', e));
    media.on('consumeFailed', ({ producerId, error }) =>
      this.emit('warning', { message: `could not consume producer ${producerId}: ${error.message}` }),
    );
    media.on('iceFailed', () => this.lose('ice_failed'));
    media.on('iceDisconnected', (e) => this.onIce?.(e));
    return media;
  }

  /** Teardown: `reconnecting` when a rejoin follows, `closed` when the session ends. Idempotent. */
  close(reason: 'reconnecting' | 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.detector?.stop();
    this.mediaConnection?.close(reason);
    this.channel.close(reason === 'closed' ? 'left' : 'rejoining');
  }

  private onNotification(notification: NotificationEvent): void {
    if (notification.name === 'rejoin') {
      this.lose(notification.data.reason);
      return;
    }
    this.mediaConnection?.handleNotification(notification);
  }

  private lose(reason: RejoinReason): void {
    if (this.lost !== undefined || this.closed) return;
    this.lost = reason;
    this.detector?.stop();
    this.emit('lost', { reason });
  }

  private onReplaced(): void {
    if (this.lost !== undefined || this.closed) return;
    this.lost = 'signaling_closed';
    this.emit('replaced', {});
  }
}
