/**
 * A session: one peer in one room, kept alive across media server and region failures.
 *
 * Joining: `POST /v1/rooms/:roomId/join` through the API client's fallback chain, then the signaling
 * socket to the answer's `signalingUrl`, `join` with the media token, the Device, transports, the
 * local tracks and a consumer per remote producer. The answer's alternates join the API client's
 * fallback chain, so a later rejoin can reach a surviving region when the configured names fail.
 *
 * Rejoin policy:
 * - Triggers: the signaling socket closes, a ping or request goes unanswered, ICE fails (or stays
 *   disconnected past a grace period) on a transport, or the server sends `rejoin`.
 * - Exclusions sent with the rejoin: the lost server, unless the server itself said the room moved or
 *   closed (then the LB's current answer is the right one). A server whose region edge could not even
 *   open a socket gets its region excluded too. If the API has nowhere left to send us, region
 *   exclusions are dropped (the LB knows more than one client does), and at a second such answer the
 *   server exclusions too. The API URLs of excluded regions are asked last.
 * - Timing: exponential backoff with full jitter and a cap before every attempt (see backoff.ts);
 *   `backoff.maxAttempts` per outage, `backoff.joinAttempts` for the first join.
 * - Restore: the same local tracks are produced on the new server with their muted state; after
 *   `joined`/`reconnected` every remote producer is consumed again (each one a `remoteTrack`) and
 *   operations queued while reconnecting are replayed.
 * - A 4xx from the join API (bad token, unknown room) is final: retrying cannot fix it.
 */
import type { ApiClient } from './ApiClient';
import { backoffDelayMs } from './backoff';
import type { ClientConfig } from './config';
import { TypedEmitter } from './TypedEmitter';
import {
  ApiError,
  ApiUnavailableError,
  SessionClosedError,
  SignalingLostError,
  SignalingOpenError,
  SignalingRequestError,
} from './errors';
import { SIGNALING_CLOSE } from '../protocol/signaling';
import { BadJoinAnswerError, type JoinAnswer, type JoinExclusions, requestJoin } from './joinApi';
import {
  MediaConnection,
  type MediaKind,
  type RemoteTrackEvent,
  type TrackEndedEvent,
} from './MediaConnection';
import { Outbox } from './Outbox';
import type { Platform } from './platform';
import type { RttElection } from './RttElection';
import { type NotificationEvent, SignalingChannel } from './SignalingChannel';
import { nowMs, sleep } from './timers';

/** Servers remembered as dead during one outage; older ones have likely been replaced by then. */
const MAX_EXCLUDED_SERVERS = 8;
/** Regions excluded during one outage; beyond this the client would exclude most of the platform. */
const MAX_EXCLUDED_REGIONS = 3;
/** How long `leave()` waits for the server to acknowledge before closing anyway. */
const LEAVE_ACK_TIMEOUT_MS = 1_000;

export type RejoinReason =
  | 'signaling_closed'
  | 'ping_timeout'
  | 'request_timeout'
  | 'ice_failed'
  | 'room_moved'
  | 'server_draining'
  | 'region_evacuated'
  | 'worker_died'
  | 'room_closed';

export type SessionState = 'joining' | 'connected' | 'reconnecting' | 'closed';

export interface JoinedEvent {
  readonly region: string;
  readonly serverId: string;
  readonly peerId: string;
  /** API base URL that answered the join. */
  readonly apiUrl: string;
}

export interface ReconnectingEvent {
  readonly reason: RejoinReason;
  /** 1-based attempt within this outage. */
  readonly attempt: number;
  /** Jittered wait before this attempt. */
  readonly delayMs: number;
  readonly exclude: { readonly serverIds: readonly string[]; readonly regions: readonly string[] };
}

export interface ReconnectedEvent extends JoinedEvent {
  readonly reason: RejoinReason;
  readonly attempts: number;
  /** From noticing the failure to signaling and local media being restored (remote tracks follow). */
  readonly downtimeMs: number;
  /** Duration of the successful attempt alone (join API + signaling + producers), without backoff. */
  readonly rejoinMs: number;
}

export interface SessionEvents {
  joined: JoinedEvent;
  remoteTrack: RemoteTrackEvent;
  trackEnded: TrackEndedEvent;
  remotePaused: { peerId: string; producerId: string; kind: MediaKind; paused: boolean };
  reconnecting: ReconnectingEvent;
  reconnected: ReconnectedEvent;
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

/** A join token, or a function that returns a fresh one (called before every join and rejoin). */
export type TokenSource = string | (() => string | Promise<string>);

export interface JoinOptions {
  readonly produce?: { readonly video?: MediaStreamTrack; readonly audio?: MediaStreamTrack };
  /** Receive the other peers' media. @default true */
  readonly consume?: boolean;
  readonly displayName?: string;
  /** Aborting it leaves the session. */
  readonly signal?: AbortSignal;
}

export interface SessionDeps {
  readonly api: ApiClient;
  readonly platform: Platform;
  readonly config: Pick<ClientConfig, 'timeouts' | 'backoff' | 'followAlternates'>;
  readonly election?: RttElection;
  /** Random source for the backoff jitter. */
  readonly random?: () => number;
  /** Awaited before the first join (the client's initial RTT election, bounded). */
  readonly beforeFirstJoin?: () => Promise<void>;
}

/** One live connection to one media server. */
interface Connection {
  readonly answer: JoinAnswer;
  readonly apiUrl: string;
  readonly channel: SignalingChannel;
  peerId: string;
  routerRtpCapabilities: unknown;
  media: MediaConnection | undefined;
  /** Set when the connection broke before it went live; the attempt then fails. */
  lostDuringSetup: RejoinReason | undefined;
}

interface Outage {
  readonly reason: RejoinReason;
  readonly detectedAt: number;
  readonly serverIds: string[];
  readonly regions: string[];
  /** Consecutive attempts the API could not place us with these exclusions. */
  unavailableStreak: number;
}

/** An attempt failed; `excludeServer`/`excludeRegion` say what it proved dead. */
class AttemptFailure extends Error {
  constructor(
    readonly failure: unknown,
    readonly serverId?: string,
    readonly region?: string,
    readonly excludeRegion = false,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}

export class Session extends TypedEmitter<SessionEvents> {
  /** Resolves at the first join; rejects if the session closes before it. */
  readonly ready: Promise<JoinedEvent>;

  private state: SessionState = 'joining';
  private conn: Connection | undefined;
  private readonly tracks = new Map<MediaKind, MediaStreamTrack>();
  private readonly muted = new Map<MediaKind, boolean>();
  private readonly outbox = new Outbox();
  private readonly lifetime = new AbortController();
  private readonly consume: boolean;

  constructor(
    private readonly deps: SessionDeps,
    readonly roomId: string,
    private readonly token: TokenSource,
    private readonly options: JoinOptions = {},
  ) {
    super();
    this.consume = options.consume ?? true;
    for (const kind of ['audio', 'video'] as const) {
      const track = options.produce?.[kind];
      if (track) this.tracks.set(kind, track);
    }
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
    this.muted.set(kind, muted);
    // Without media there is no producer to pause; the state applies when the track is produced.
    return this.control(`muted:${kind}`, async (conn) =>
      conn.media?.setPaused(kind, this.muted.get(kind) ?? false),
    );
  }

  /** Sends `track` as the local `kind` track (null stops sending it). Idempotent; queued while reconnecting. */
  setTrack(kind: MediaKind, track: MediaStreamTrack | null): Promise<void> {
    if (track) this.tracks.set(kind, track);
    else this.tracks.delete(kind);
    return this.control(`track:${kind}`, async (conn) => {
      const desired = this.tracks.get(kind) ?? null;
      if (!desired && !conn.media) return;
      const media = await this.ensureMedia(conn);
      await media.setTrack(kind, desired, this.muted.get(kind) ?? false);
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
    this.teardown(conn, 'closed');
    this.emit('closed', { reason: 'left' });
  }

  private async start(): Promise<JoinedEvent> {
    const outage: Outage = {
      reason: 'signaling_closed',
      detectedAt: nowMs(),
      serverIds: [],
      regions: [],
      unavailableStreak: 0,
    };
    try {
      await this.deps.beforeFirstJoin?.();
      const { joined } = await this.connectWithRetries(outage, this.deps.config.backoff.joinAttempts, false);
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
   * Attempts (re)joins until one works, `maxAttempts` run out, or a failure proves retrying useless.
   * `backoffFirst`: an outage waits a jittered delay even before its first attempt (the herd is
   * largest then); a user's first join does not.
   */
  private async connectWithRetries(
    outage: Outage,
    maxAttempts: number,
    backoffFirst: boolean,
  ): Promise<{ joined: JoinedEvent; attempts: number; attemptMs: number }> {
    let lastError: unknown;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const backoffAttempt = backoffFirst ? attempt : attempt - 1;
      const delayMs =
        backoffAttempt < 0 ? 0 : backoffDelayMs(backoffAttempt, this.deps.config.backoff, this.deps.random);
      if (backoffFirst) {
        this.emit('reconnecting', {
          reason: outage.reason,
          attempt: attempt + 1,
          delayMs,
          exclude: { serverIds: [...outage.serverIds], regions: [...outage.regions] },
        });
      }
      await sleep(delayMs, this.lifetime.signal);
      const startedAt = nowMs();
      try {
        const joined = await this.connectOnce(outage);
        return { joined, attempts: attempt + 1, attemptMs: Math.round(nowMs() - startedAt) };
      } catch (err) {
        if (this.state === 'closed') throw new SessionClosedError();
        lastError = err instanceof AttemptFailure ? err.failure : err;
        if (!isRetryable(lastError)) throw lastError;
        this.learnFrom(outage, err);
      }
    }
    const detail = lastError instanceof Error ? lastError.message : String(lastError);
    throw new Error(`gave up after ${maxAttempts} attempts; the last one failed with: ${detail}`, {
      cause: lastError,
    });
  }

  /** Updates the outage's exclusions with what a failed attempt proved. */
  private learnFrom(outage: Outage, err: unknown): void {
    if (err instanceof AttemptFailure) {
      if (err.serverId) pushBounded(outage.serverIds, err.serverId, MAX_EXCLUDED_SERVERS);
      if (err.excludeRegion && err.region) pushBounded(outage.regions, err.region, MAX_EXCLUDED_REGIONS);
      if (err.excludeRegion) void this.deps.election?.elect('requested');
      outage.unavailableStreak = 0;
    } else if (err instanceof ApiUnavailableError) {
      // Nowhere left to send us: first trust the LB over our region guesses, then over our server
      // guesses too (a restarted server may come back under its old id).
      outage.unavailableStreak++;
      outage.regions.length = 0;
      if (outage.unavailableStreak >= 2) outage.serverIds.length = 0;
    }
  }

  private async connectOnce(outage: Outage): Promise<JoinedEvent> {
    const signal = this.lifetime.signal;
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    const exclude: JoinExclusions = {
      ...(outage.serverIds.length ? { serverIds: [...outage.serverIds] } : {}),
      ...(outage.regions.length ? { regions: [...outage.regions] } : {}),
    };
    const rtt = this.deps.election?.rttReport();
    const { answer, apiUrl, ignoredAlternates } = await requestJoin(
      this.deps.api,
      this.roomId,
      token,
      { ...(rtt ? { rtt } : {}), ...(Object.keys(exclude).length ? { exclude } : {}) },
      signal,
    );
    // The platform's own view of where else to go: it still helps when this server, its region or
    // every configured name fails next, so it is learned before the socket is even tried.
    if (this.deps.config.followAlternates) this.deps.api.setAlternates(answer.alternates);
    if (this.deps.config.followAlternates && ignoredAlternates.length > 0) {
      this.emit('warning', {
        message: `join answer from ${apiUrl}: ignored ${ignoredAlternates.join('; ')}`,
      });
    }
    const { timeouts } = this.deps.config;
    let channel: SignalingChannel;
    try {
      channel = await SignalingChannel.open(
        this.deps.platform.openSocket,
        answer.signalingUrl,
        answer.mediaToken,
        {
          openTimeoutMs: timeouts.attemptMs,
          requestTimeoutMs: timeouts.requestMs,
          pingMs: timeouts.signalingPingMs,
          pongTimeoutMs: timeouts.signalingPongTimeoutMs,
        },
        signal,
      );
    } catch (err) {
      // The region's edge did not even take a socket: the region looks dead, not just the server.
      throw new AttemptFailure(err, answer.serverId, answer.region, err instanceof SignalingOpenError);
    }
    const conn: Connection = {
      answer,
      apiUrl,
      channel,
      peerId: '',
      routerRtpCapabilities: undefined,
      media: undefined,
      lostDuringSetup: undefined,
    };
    channel.on('notification', (n) => this.onNotification(conn, n));
    channel.on('lost', ({ reason, closeCode }) => {
      if (closeCode === CLOSE_REPLACED) this.onReplaced(conn);
      else this.onLost(conn, reason, true);
    });
    channel.on('malformed', ({ detail }) => this.emit('warning', { message: `signaling: ${detail}` }));
    try {
      const joined = await channel.request('join', {
        token: answer.mediaToken,
        ...(this.options.displayName ? { displayName: this.options.displayName } : {}),
      });
      conn.peerId = joined.peerId;
      conn.routerRtpCapabilities = joined.routerRtpCapabilities;
      if (this.consume || this.tracks.size > 0) {
        const media = await this.ensureMedia(conn);
        for (const [kind, track] of this.tracks)
          await media.setTrack(kind, track, this.muted.get(kind) ?? false);
      }
      if (conn.lostDuringSetup)
        throw new SignalingLostError('signaling_closed', `lost during setup: ${conn.lostDuringSetup}`);
    } catch (err) {
      this.teardown(conn, 'reconnecting');
      // A server that said it is draining, or broke mid-setup, is excluded; a rejected media token
      // (expired on the way, or already used) only needs a fresh join.
      const serverAtFault = !isMediaTokenRefusal(err);
      throw new AttemptFailure(err, serverAtFault ? answer.serverId : undefined, answer.region);
    }
    if (this.state === 'closed') {
      this.teardown(conn, 'closed');
      throw new SessionClosedError();
    }
    this.conn = conn;
    this.state = 'connected';
    this.deps.election?.watch(answer.region);
    return { region: answer.region, serverId: answer.serverId, peerId: conn.peerId, apiUrl };
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

  private async ensureMedia(conn: Connection): Promise<MediaConnection> {
    if (conn.media) return conn.media;
    const device = await this.deps.platform.createDevice();
    const media = await MediaConnection.create(conn.channel, device, conn.routerRtpCapabilities, {
      consume: this.consume,
      ownPeerId: conn.peerId,
    });
    if (conn.media) {
      // Two controls raced to create it; keep the first.
      media.close('closed');
      return conn.media;
    }
    conn.media = media;
    media.on('remoteTrack', (e) => this.emit('remoteTrack', e));
    media.on('trackEnded', (e) => this.emit('trackEnded', e));
    media.on('remotePaused', (e) => this.emit('remotePaused', e));
    media.on('consumeFailed', ({ producerId, error }) =>
      this.emit('warning', { message: `could not consume producer ${producerId}: ${error.message}` }),
    );
    media.on('iceFailed', () => this.onLost(conn, 'ice_failed', true));
    return media;
  }

  private onNotification(conn: Connection, notification: NotificationEvent): void {
    if (notification.name === 'rejoin') {
      const { reason } = notification.data;
      this.onLost(
        conn,
        reason,
        reason === 'server_draining' || reason === 'worker_died' || reason === 'region_evacuated',
      );
      return;
    }
    conn.media?.handleNotification(notification);
  }

  private onLost(conn: Connection, reason: RejoinReason, excludeServer: boolean): void {
    if (this.conn !== conn) {
      conn.lostDuringSetup ??= reason;
      return;
    }
    if (this.state !== 'connected') return;
    this.state = 'reconnecting';
    this.conn = undefined;
    this.deps.election?.watch(undefined);
    this.teardown(conn, 'reconnecting');
    const outage: Outage = {
      reason,
      detectedAt: nowMs(),
      serverIds: excludeServer ? [conn.answer.serverId] : [],
      regions: [],
      unavailableStreak: 0,
    };
    this.connectWithRetries(outage, this.deps.config.backoff.maxAttempts, true).then(
      ({ joined, attempts, attemptMs }) => {
        this.emit('reconnected', {
          ...joined,
          reason,
          attempts,
          downtimeMs: Math.round(nowMs() - outage.detectedAt),
          rejoinMs: attemptMs,
        });
        this.afterLive();
      },
      (err: Error) => this.fail(err),
    );
  }

  /** A newer session of this identity took our place in the room: end quietly, never rejoin. */
  private onReplaced(conn: Connection): void {
    if (this.conn !== conn) {
      conn.lostDuringSetup ??= 'signaling_closed';
      return;
    }
    if (this.state === 'closed') return;
    this.shutDown();
    this.teardown(conn, 'closed');
    this.emit('closed', { reason: 'replaced' });
  }

  private fail(err: Error): void {
    if (this.state === 'closed') return;
    const conn = this.conn;
    this.shutDown();
    this.teardown(conn, 'closed');
    this.emit('error', { error: err, fatal: true });
    this.emit('closed', { reason: 'failed', error: err });
  }

  private shutDown(): void {
    this.state = 'closed';
    this.conn = undefined;
    this.lifetime.abort(new SessionClosedError());
    this.deps.election?.watch(undefined);
    this.outbox.rejectAll(new SessionClosedError());
  }

  private teardown(conn: Connection | undefined, reason: 'reconnecting' | 'closed'): void {
    if (!conn) return;
    conn.media?.close(reason);
    conn.channel.close(reason === 'closed' ? 'left' : 'rejoining');
  }
}

const { unauthorized: CLOSE_UNAUTHORIZED, replaced: CLOSE_REPLACED } = SIGNALING_CLOSE;
/** Join refusals that no retry can fix: the room holds as many peers as it may. */
const FINAL_JOIN_REFUSALS = new Set(['room_full']);

function isMediaTokenRefusal(err: unknown): boolean {
  return (
    (err instanceof SignalingRequestError && ['unauthorized', 'forbidden'].includes(err.code)) ||
    (err instanceof SignalingLostError && err.closeCode === CLOSE_UNAUTHORIZED)
  );
}

function isConnectionLoss(err: unknown): boolean {
  return err instanceof SignalingLostError;
}

/** Failures a later attempt may not hit; anything else (a 4xx, a local bug) ends the session. */
function isRetryable(err: unknown): boolean {
  if (err instanceof ApiError) return err.retryable;
  if (err instanceof SignalingRequestError && FINAL_JOIN_REFUSALS.has(err.code)) return false;
  return (
    err instanceof ApiUnavailableError ||
    err instanceof BadJoinAnswerError ||
    err instanceof SignalingOpenError ||
    err instanceof SignalingLostError ||
    err instanceof SignalingRequestError
  );
}

function pushBounded(list: string[], value: string, max: number): void {
  if (list.includes(value)) return;
  list.push(value);
  if (list.length > max) list.shift();
}
