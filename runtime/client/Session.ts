/**
 * A session: one peer in one room, kept alive across media server and region failures. This file is
 * the public face and the state machine; one attempt is connectOnce.ts, the outage policy (exclusions,
 * retry classification, backoff) is outage.ts, one server's connection is Connection.ts, the local
 * tracks' intent is LocalTracks.ts, and controls queued while reconnecting are Outbox.ts.
 *
 * States: `joining` → `connected` ⇄ `reconnecting`, and `closed` from any of them, for good.
 * - The session has at most one live connection. It goes live when an attempt succeeds; it is
 *   dropped, and a rejoin starts, at its first loss: the signaling socket closes, a ping or request
 *   goes unanswered, ICE fails (or stays disconnected past a grace period), or the server sends
 *   `rejoin`. Events of any other connection (one still being set up, one already dropped) never
 *   move the state.
 * - `joined` and `reconnected` are emitted before the new server's remote tracks are consumed and the
 *   queued controls replayed, so apps see the new server first.
 * - Make-before-break: when the failure detector (FailureDetector.ts) suspects the live server, a
 *   switch starts beside it (`suspected`): a join excluding that server, hedged sooner across API
 *   URLs (and at once past a name that last led into the server's region), and the new server's
 *   signaling socket, while the old connection stays live. Once the socket
 *   is open the switch decides: if the old server answers again it is dropped before the new server
 *   ever saw this peer (`switchCancelled`); otherwise it joins, sets up media with the very same local
 *   tracks, and goes live (`reconnected` with the detection signal as its reason). Joining the server
 *   is the commit point: the same server closes the older session of the identity with 4003
 *   `replaced`, which for a switch is its own completion, not another tab taking over. A hard loss
 *   of the old connection during a switch lets the switch finish as the rejoin; a failed switch falls
 *   back to the ordinary rejoin (with backoff) if the old connection is gone, else keeps it.
 * - `closed` is final: the app left, gave up (`error` with `fatal: true` first: attempts ran out or a
 *   failure was final), or another session of the same identity replaced this one; a replaced session
 *   ends quietly instead of rejoining, which would replace that session in turn.
 */
import type { ApiClient } from './ApiClient';
import type { BackoffConfig } from './config';
import type { DetectionOptions } from './config';
import {
  type AttemptContext,
  connectOnce,
  joinServer,
  openConnection,
  type TokenSource,
} from './connectOnce';
import type { Connection, RejoinReason } from './Connection';
import { SessionClosedError, SignalingLostError } from './errors';
import type { DetectionSignal } from './FailureDetector';
import { LocalTracks } from './LocalTracks';
import type { MediaKind, RemotePausedEvent, RemoteTrackEvent, TrackEndedEvent } from './MediaConnection';
import { Outbox } from './Outbox';
import {
  type AttemptSchedule,
  firstJoinOutage,
  isConnectionLoss,
  joinExclusions,
  type Outage,
  outageAfterLoss,
  retryUntilConnected,
} from './outage';
import type { Platform } from './platform';
import type { RttElection } from './RttElection';
import type { SignalingTimeouts } from './SignalingChannel';
import { TypedEmitter } from './TypedEmitter';
import { nowMs, sleep } from './timers';

/** How long `leave()` waits for the server to acknowledge before closing anyway. */
const LEAVE_ACK_TIMEOUT_MS = 1_000;

export type SessionState = 'joining' | 'connected' | 'reconnecting' | 'closed';

export interface JoinedEvent {
  readonly region: string;
  readonly serverId: string;
  readonly peerId: string;
  /** API base URL that answered the join. */
  readonly apiUrl: string;
  /** Where the signaling socket went: the answer's `signalingUrl`, or its fallback in the other family. */
  readonly signalingUrl: string;
}

export interface ReconnectingEvent extends AttemptSchedule {
  readonly reason: RejoinReason;
}

export interface ReconnectedEvent extends JoinedEvent {
  readonly reason: RejoinReason;
  readonly attempts: number;
  /** From noticing the failure to signaling and local media being restored (remote tracks follow). */
  readonly downtimeMs: number;
  /** Duration of the successful attempt alone (join API + signaling + producers), without backoff. */
  readonly rejoinMs: number;
  /** `switch`: make-before-break after a suspicion (the old server stayed open until now). */
  readonly mode: 'rejoin' | 'switch';
}

export interface SuspectedServerEvent {
  readonly serverId: string;
  readonly region: string;
  /** The signal that went first: inbound media stall, missed ping, or ICE disconnected. */
  readonly signal: DetectionSignal;
  readonly evidence: readonly string[];
}

export interface SessionEvents {
  joined: JoinedEvent;
  remoteTrack: RemoteTrackEvent;
  trackEnded: TrackEndedEvent;
  remotePaused: RemotePausedEvent;
  reconnecting: ReconnectingEvent;
  reconnected: ReconnectedEvent;
  /** The failure detector suspects the live server; a make-before-break switch starts. */
  suspected: SuspectedServerEvent;
  /** The suspected server answered again before the switch committed; the new server was dropped. */
  switchCancelled: { readonly serverId: string; readonly signal: DetectionSignal; readonly afterMs: number };
  /** `fatal: true` is followed by `closed`. */
  error: { error: Error; fatal: boolean };
  /**
   * `replaced`: another session of the same identity joined the room (another tab or device), so this
   * one ended rather than rejoin and replace it in turn.
   */
  closed: { reason: 'left' | 'failed' | 'replaced'; error?: Error };
  /** Something odd that did not stop the call (an unconsumable producer, a malformed frame). */
  warning: { message: string };
}

export interface JoinOptions {
  readonly produce?: { readonly video?: MediaStreamTrack; readonly audio?: MediaStreamTrack };
  /** Receive the other peers' media. @default true */
  readonly consume?: boolean;
  readonly displayName?: string;
  /** Aborting it leaves the session. */
  readonly signal?: AbortSignal;
}

export interface SessionOptions extends JoinOptions {
  readonly roomId: string;
  readonly token: TokenSource;
  readonly api: ApiClient;
  readonly platform: Pick<Platform, 'openSocket' | 'createDevice'>;
  /** Supplies the RTTs sent with every join and watches the live region. @default none */
  readonly election?: RttElection;
  readonly signaling: SignalingTimeouts;
  readonly backoff: BackoffConfig;
  /** Whether join answers' alternates extend the API fallback chain. */
  readonly followAlternates: boolean;
  /** Client config `iceTransportPolicy`. @default 'all' */
  readonly iceTransportPolicy?: 'all' | 'relay';
  /** Random source for the backoff jitter. @default Math.random */
  readonly random?: () => number;
  /** Awaited before the first join (the client's initial RTT election, bounded). @default none */
  readonly beforeFirstJoin?: () => Promise<void>;
  /** Failure detection and make-before-break switching. @default false (hard losses only) */
  readonly detection?: DetectionOptions | false;
  /** The failure detector's clock (tests run it faster than the wall clock). @default performance.now */
  readonly detectorClock?: () => number;
}

/** A make-before-break switch in progress. */
interface Switch {
  readonly from: Connection;
  readonly signal: DetectionSignal;
  readonly startedAt: number;
  readonly abort: AbortController;
  /** The new server has been joined: the old one may close us with 4003 from now on. */
  committed: boolean;
}

export class Session extends TypedEmitter<SessionEvents> {
  /** Resolves at the first join; rejects if the session closes before it. */
  readonly ready: Promise<JoinedEvent>;
  readonly roomId: string;

  private state: SessionState = 'joining';
  private conn: Connection | undefined;
  private readonly local: LocalTracks;
  private readonly outbox = new Outbox();
  private readonly lifetime = new AbortController();
  private readonly consume: boolean;
  private readonly attemptContext: AttemptContext;
  private readonly election: RttElection | undefined;
  private readonly backoff: BackoffConfig;
  private readonly random: (() => number) | undefined;
  private readonly beforeFirstJoin: (() => Promise<void>) | undefined;
  private readonly detection: DetectionOptions | false;
  private readonly detectorClock: (() => number) | undefined;
  private switching: Switch | undefined;

  constructor(options: SessionOptions) {
    super();
    this.roomId = options.roomId;
    this.consume = options.consume ?? true;
    this.local = new LocalTracks(options.produce);
    this.election = options.election;
    this.backoff = options.backoff;
    this.random = options.random;
    this.beforeFirstJoin = options.beforeFirstJoin;
    this.detection = options.detection ?? false;
    this.detectorClock = options.detectorClock;
    this.attemptContext = {
      roomId: options.roomId,
      token: options.token,
      displayName: options.displayName,
      consume: this.consume,
      local: this.local,
      api: options.api,
      platform: options.platform,
      election: options.election,
      signaling: options.signaling,
      followAlternates: options.followAlternates,
      iceTransportPolicy: options.iceTransportPolicy,
      onConnection: (conn) => this.listenTo(conn),
      onWarning: (message) => this.emit('warning', { message }),
    };
    options.signal?.addEventListener('abort', () => void this.leave(), { once: true });
    this.ready = this.start();
    // The failure is also delivered as `error` + `closed`; an app listening to events only must not
    // get an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  get connectionState(): SessionState {
    return this.state;
  }

  get region(): string | undefined {
    return this.conn?.answer.region;
  }

  get serverId(): string | undefined {
    return this.conn?.answer.serverId;
  }

  get peerId(): string | undefined {
    return this.conn?.peerId;
  }

  get apiUrl(): string | undefined {
    return this.conn?.apiUrl;
  }

  /** Remote tracks being received now. */
  get remoteTracks(): RemoteTrackEvent[] {
    return this.conn?.media?.remoteTracks ?? [];
  }

  /**
   * Mutes or unmutes the local `kind` track (pauses its producer). Idempotent; while reconnecting it
   * is queued and resolves once the new server has applied it.
   */
  setMuted(kind: MediaKind, muted: boolean): Promise<void> {
    this.local.setMuted(kind, muted);
    // Without media there is no producer to pause; the state applies when the track is produced.
    return this.control(`muted:${kind}`, async (conn) =>
      conn.media?.setPaused(kind, this.local.isMuted(kind)),
    );
  }

  /** Sends `track` as the local `kind` track (null stops sending it). Idempotent; queued while reconnecting. */
  setTrack(kind: MediaKind, track: MediaStreamTrack | null): Promise<void> {
    this.local.setTrack(kind, track);
    return this.control(`track:${kind}`, async (conn) => {
      const desired = this.local.track(kind);
      if (!desired && !conn.media) return;
      const media = await conn.ensureMedia();
      await media.setTrack(kind, desired, this.local.isMuted(kind));
    });
  }

  /** Leaves the room: tells the server (briefly), closes everything, emits `closed`. Idempotent. */
  async leave(): Promise<void> {
    if (this.state === 'closed') return;
    const conn = this.conn;
    this.shutDown();
    if (conn?.channel.isOpen) {
      await Promise.race([
        conn.channel.request('leave', {}).catch(() => undefined),
        sleep(LEAVE_ACK_TIMEOUT_MS),
      ]);
    }
    conn?.close('closed');
    this.emit('closed', { reason: 'left' });
  }

  private async start(): Promise<JoinedEvent> {
    try {
      await this.beforeFirstJoin?.();
      const { joined } = await this.connectWithRetries(firstJoinOutage(), this.backoff.joinAttempts, false);
      this.emit('joined', joined);
      this.afterLive();
      return joined;
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
  }

  /** Applies a control now when connected, else queues it for the next connection. */
  private async control(key: string, apply: (conn: Connection) => Promise<void>): Promise<void> {
    if (this.state === 'closed') throw new SessionClosedError();
    const run = async () => {
      const conn = this.conn;
      if (!conn) throw new SignalingLostError('signaling_closed', 'no server');
      await apply(conn);
    };
    if (this.state === 'connected') {
      try {
        return await run();
      } catch (err) {
        // The connection dropped under us: the rejoin will restore the state; wait for it.
        if (!isConnectionLoss(err) || (this.state as SessionState) === 'closed') throw err;
      }
    }
    return this.outbox.enqueue(key, run);
  }

  /**
   * Attempts (re)joins until one goes live (see outage.ts for when to give up). A rejoin announces
   * every attempt as `reconnecting` and waits a jittered delay even before its first one; a user's
   * first join does neither.
   */
  private async connectWithRetries(
    outage: Outage,
    maxAttempts: number,
    rejoin: boolean,
  ): Promise<{ joined: JoinedEvent; attempts: number; attemptMs: number }> {
    const signal = this.lifetime.signal;
    const { result, attempts, attemptMs } = await retryUntilConnected({
      outage,
      maxAttempts,
      backoffFirst: rejoin,
      backoff: this.backoff,
      random: this.random,
      signal,
      attempt: async (current) =>
        this.goLive(await connectOnce(this.attemptContext, { exclude: joinExclusions(current), signal })),
      onScheduled: rejoin
        ? (schedule) => this.emit('reconnecting', { reason: outage.reason, ...schedule })
        : undefined,
      onRegionExcluded: () => void this.election?.elect('requested'),
    });
    return { joined: result, attempts, attemptMs };
  }

  /**
   * Makes an attempt's connection the live one. It runs in the same turn as the attempt's last check
   * that the connection is alive, so every loss is seen either by the attempt or by `onLost`.
   */
  private goLive(conn: Connection): JoinedEvent {
    this.conn = conn;
    this.state = 'connected';
    this.election?.watch(conn.answer.region);
    if (this.detection) conn.watch(this.detection, this.detectorClock);
    const { region, serverId } = conn.answer;
    return { region, serverId, peerId: conn.peerId, apiUrl: conn.apiUrl, signalingUrl: conn.channel.url };
  }

  /**
   * Runs once `joined`/`reconnected` is out, so apps see the session's new server before its remote
   * tracks. A failure here is a connection loss like any other and goes through the rejoin path.
   */
  private afterLive(): void {
    const conn = this.conn;
    if (!conn) return;
    if (this.consume && conn.media) {
      conn.media.consumeExisting().catch((err: Error) => {
        if (this.conn === conn && !isConnectionLoss(err)) {
          this.emit('warning', { message: `listProducers: ${err.message}` });
        }
      });
    }
    void this.outbox.flush(isConnectionLoss);
  }

  /** Hears everything a connection reports from its creation on; only the live one moves the state. */
  private listenTo(conn: Connection): void {
    conn.on('lost', ({ reason }) => this.onLost(conn, reason));
    conn.on('replaced', () => this.onReplaced(conn));
    conn.on('suspected', (e) => this.onSuspected(conn, e.signal, e.evidence));
    conn.on('remoteTrack', (e) => this.emit('remoteTrack', e));
    conn.on('trackEnded', (e) => this.emit('trackEnded', e));
    conn.on('remotePaused', (e) => this.emit('remotePaused', e));
    conn.on('warning', (e) => this.emit('warning', e));
  }

  private onLost(conn: Connection, reason: RejoinReason): void {
    // A connection that is not live yet fails its attempt through its `lostReason` instead.
    if (this.conn !== conn || this.state !== 'connected') return;
    this.state = 'reconnecting';
    this.conn = undefined;
    this.election?.watch(undefined);
    conn.close('reconnecting');
    // A switch away from this server is already under way: it is the rejoin (see runSwitch).
    if (this.switching?.from === conn) return;
    this.rejoin(reason, conn.answer.serverId);
  }

  private rejoin(reason: RejoinReason, serverId: string): void {
    const outage = outageAfterLoss(reason, serverId);
    this.connectWithRetries(outage, this.backoff.maxAttempts, true).then(
      ({ joined, attempts, attemptMs }) => {
        this.emit('reconnected', {
          ...joined,
          reason,
          attempts,
          downtimeMs: Math.round(nowMs() - outage.detectedAt),
          rejoinMs: attemptMs,
          mode: 'rejoin',
        });
        this.afterLive();
      },
      (err: Error) => this.fail(err),
    );
  }

  private onSuspected(conn: Connection, signal: DetectionSignal, evidence: readonly string[]): void {
    if (this.conn !== conn || this.state !== 'connected' || this.switching) return;
    const { serverId, region } = conn.answer;
    const abort = new AbortController();
    const onSessionEnd = () => abort.abort(this.lifetime.signal.reason);
    this.lifetime.signal.addEventListener('abort', onSessionEnd, { once: true });
    const sw: Switch = { from: conn, signal, startedAt: nowMs(), abort, committed: false };
    this.switching = sw;
    this.emit('suspected', { serverId, region, signal, evidence });
    void this.runSwitch(sw).finally(() => {
      this.lifetime.signal.removeEventListener('abort', onSessionEnd);
      if (this.switching === sw) this.switching = undefined;
    });
  }

  /** One make-before-break switch (see the header): prepare, decide, commit, go live. */
  private async runSwitch(sw: Switch): Promise<void> {
    const { from, abort } = sw;
    const serverId = from.answer.serverId;
    const detection = this.detection as DetectionOptions;
    let next: Connection | undefined;
    try {
      next = await openConnection(this.attemptContext, {
        // The server is named as failed (the LB checks the claim). Its region is only suspected: its
        // names are still asked, but the next name starts beside each at once, since a frozen region's
        // names would each cost a hedge delay (its LB may be fine too: then it answers first).
        exclude: { serverIds: [serverId] },
        suspectRegions: [from.answer.region],
        signal: abort.signal,
        hedgeMs: detection.switchHedgeMs,
      });
      // Decide: the old server answers again and still holds us, so the new one is not needed.
      if (this.conn === from && !from.suspected && from.lostReason === undefined) {
        next.close('closed');
        this.emit('switchCancelled', {
          serverId,
          signal: sw.signal,
          afterMs: Math.round(nowMs() - sw.startedAt),
        });
        return;
      }
      sw.committed = true;
      const startedAt = nowMs();
      await joinServer(this.attemptContext, next, abort.signal);
      if ((this.state as SessionState) === 'closed') {
        next.close('closed');
        return;
      }
      const joined = this.goLive(next);
      if (from !== next) from.close('reconnecting');
      this.emit('reconnected', {
        ...joined,
        reason: sw.signal,
        attempts: 1,
        downtimeMs: Math.round(nowMs() - sw.startedAt),
        rejoinMs: Math.round(nowMs() - startedAt),
        mode: 'switch',
      });
      this.afterLive();
    } catch (err) {
      if (this.state === 'closed') return;
      this.emit('warning', { message: `switch away from ${serverId} failed: ${(err as Error).message}` });
      // The old connection is gone (lost, or closed by our own commit): rejoin the ordinary way.
      if (this.conn === from && from.lostReason !== undefined) {
        this.state = 'reconnecting';
        this.conn = undefined;
        this.election?.watch(undefined);
        from.close('reconnecting');
      }
      if (this.state === 'reconnecting') this.rejoin(from.lostReason ?? sw.signal, serverId);
    }
  }

  /** A newer session of this identity took our place in the room: end quietly, never rejoin. */
  private onReplaced(conn: Connection): void {
    if (this.conn !== conn || this.state === 'closed') return;
    // Our own switch joined the same server: the 4003 completes it (runSwitch goes live next).
    if (this.switching?.from === conn && this.switching.committed) return;
    this.shutDown();
    conn.close('closed');
    this.emit('closed', { reason: 'replaced' });
  }

  private fail(err: Error): void {
    if (this.state === 'closed') return;
    const conn = this.conn;
    this.shutDown();
    conn?.close('closed');
    this.emit('error', { error: err, fatal: true });
    this.emit('closed', { reason: 'failed', error: err });
  }

  private shutDown(): void {
    this.state = 'closed';
    this.conn = undefined;
    this.lifetime.abort(new SessionClosedError());
    this.election?.watch(undefined);
    this.outbox.rejectAll(new SessionClosedError());
  }
}
