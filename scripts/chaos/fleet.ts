/**
 * The chaos run's simulated clients: real client SDK sessions (signaling kept alive with pings), each
 * "located" near one region by its source address 127.0.<n>.<100+k>, which is also how the DNS
 * emulator routes it. Half use the dual-URL config (api, api-backup, then ranked region URLs), half are
 * DNS-only (api alone). A few carry real media (@roamhq/wrtc synthetic video) to time media recovery;
 * some of those are forced through the TURN relay of the region serving them (`iceTransportPolicy:
 * 'relay'`), as clients on networks that allow nothing else, so the relay's failover is measured too.
 * Every client reaches the platform by name only (`api.<domain>`, `api-backup.<backupDomain>`, the
 * region names), resolved through the emulator's two zones as an AWS client resolves Route 53's.
 *
 * Besides its session, every client makes a join API call every PROBE_INTERVAL_MS, the steady request
 * load a platform sees; each attempt's outcome is recorded, so "zero failed requests" is measured on
 * real traffic and not inferred.
 */
import { createNodeClient, type Client, type Session } from '../../runtime/client/node';
import { byDistanceFrom } from '../../runtime/protocol/regions';
import { RemoteFrames, type MediaWitness } from './survivors';
import type { ClientKind, ClientOutcome } from './verdict';

/** One API attempt's timeout. */
const ATTEMPT_MS = 1_500;
/** Period of each client's background join API call. */
const PROBE_INTERVAL_MS = 2_000;
/** A media client counts as receiving again once this many new frames arrived after its rejoin (from the first). */
const MEDIA_FRAMES_TO_COUNT = 5;

export interface FleetRegion {
  readonly name: string;
  readonly address: string;
  readonly lbUrl: string;
}

export interface FleetOptions {
  readonly regions: readonly FleetRegion[];
  readonly domain: string;
  readonly backupDomain: string;
  readonly lbPort: number;
  readonly dns: { readonly primary: string; readonly backup: string };
  readonly dnsTtlSeconds: number;
  readonly token: (room: string, sub: string) => Promise<string>;
  readonly now?: () => number;
}

/** Who a simulated client is: where it sits, how it is configured, and what it carries. */
export interface ClientSpec {
  readonly index: number;
  /** The region it sits near (its source address, which the DNS emulator locates). */
  readonly location: FleetRegion;
  readonly kind: ClientKind;
  readonly room: string;
  /** Sends and receives real media. @default false */
  readonly withMedia?: boolean;
  /** Media only through the TURN relay (client config `iceTransportPolicy: 'relay'`). @default false */
  readonly forcedRelay?: boolean;
  /**
   * One of the survivors whose media from each other is timed across the fault (survivors.ts): it must
   * join its own region's leg, so its API calls do not hedge. A hedge would go to api-backup, whose
   * weighted answer is any healthy region, whenever a join on a busy machine takes longer than the
   * hedge delay. @default false
   */
  readonly witness?: boolean;
}

export class SimulatedClient {
  readonly index: number;
  readonly location: FleetRegion;
  readonly kind: ClientKind;
  readonly room: string;
  readonly withMedia: boolean;
  readonly forcedRelay: boolean;

  readonly id: string;
  private readonly client: Client;
  session: Session | undefined;
  apiRegion = '';
  serverRegion = '';
  serverId = '';
  /** Epoch ms, null until it happens (after `markInjection`). */
  private injectionAt: number | null = null;
  /** Session outage: `reconnecting` after the injection → `reconnected`. */
  private sessionDownAt: number | null = null;
  /** First loss of signaling after the injection that the platform did not order (not `room_moved`). */
  private signalingLostAt: number | null = null;
  /** Rejoins after the injection because a media server sent the peer on (a split room converging). */
  private roomMoves = 0;
  private rejoinedAt: number | null = null;
  /** API outage: first failed attempt after the injection → next call that succeeded. */
  private apiDownAt: number | null = null;
  private apiUpAt: number | null = null;
  private mediaAt: number | null = null;
  private requests = 0;
  private failed = 0;
  /** Calls (each maybe several attempts) after the injection, and those no URL answered. */
  private calls = 0;
  private failedCalls = 0;
  /** Set when the client was started after the injection (it joins during the fault). */
  private startedAt: number | null = null;
  private joinedAt: number | null = null;
  private signalingUrl: string | null = null;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Remote video frames decoded, per sender peer id, and the counters that see them (per consumer). */
  readonly remoteFrames = new RemoteFrames();
  private readonly counters = new Map<string, { stop(): void }>();
  /** Every peer id this client's sessions had: a rejoin brings a new one. */
  readonly peerIds: string[] = [];
  private mediaStop: (() => void) | undefined;
  private readonly events: { at: number; what: string }[] = [];

  constructor(
    spec: ClientSpec,
    private readonly opts: FleetOptions,
  ) {
    const { index, location, kind, room, withMedia = false, forcedRelay = false, witness = false } = spec;
    this.index = index;
    this.location = location;
    this.kind = kind;
    this.room = room;
    this.withMedia = withMedia;
    this.forcedRelay = forcedRelay;
    const suffix = withMedia ? (forcedRelay ? '-media-relay' : '-media') : '';
    this.id = `c${String(index).padStart(2, '0')}-${location.name}-${kind}${suffix}`;
    const localAddress = location.address.replace(/\.\d+$/, `.${100 + index}`);
    const api = `http://api.${opts.domain}:${opts.lbPort}`;
    const backup = `http://api-backup.${opts.backupDomain}:${opts.lbPort}`;
    this.client = createNodeClient({
      // Dual-URL: api, api-backup, then the region names (`regionUrls`) in the order an RTT election
      // ranks them on a real network, by distance from the client. The SDK's election itself stays off
      // here: RTTs between loopback addresses say nothing about place, so it would rank the regions at
      // random (and a join slow enough to hedge would land in a random region). The client's place is
      // its source address.
      apiUrls: kind === 'dual-url' ? [api, backup] : [api],
      ...(kind === 'dual-url'
        ? {
            regionUrls: Object.fromEntries(
              byDistanceFrom(
                location.name,
                opts.regions.map((r) => r.name),
              ).map((r) => [r, `http://${r}.api.${opts.domain}:${opts.lbPort}`]),
            ),
          }
        : {}),
      rttElection: false,
      // A DNS-only client has nothing but the primary name: no region URLs from join answers either.
      followAlternates: kind === 'dual-url',
      // Hedge after 400 ms: loopback answers take a few ms, so only a dead or silent URL waits that long
      // (a witness does not hedge: at the attempt timeout, 1.5 s, it moves on all the same). Signaling
      // pings keep the SDK's defaults: a missed ping is half of the failure detector's evidence.
      timeouts: { attemptMs: ATTEMPT_MS, hedgeMs: witness ? ATTEMPT_MS : 400 },
      backoff: { baseMs: 200, capMs: 3_000, maxAttempts: 60, joinAttempts: 5 },
      dns: {
        servers: { [opts.backupDomain]: opts.dns.backup, [opts.domain]: opts.dns.primary },
        maxCacheSeconds: opts.dnsTtlSeconds,
      },
      localAddress,
      iceTransportPolicy: forcedRelay ? 'relay' : 'all',
    });
    this.client.api.on('served', (e) => {
      if (this.injectionAt === null) return;
      const failures = e.attempts.filter((a) => a.outcome !== 'ok' && a.outcome !== 'client_error').length;
      this.countRequests(e.attempts.length, failures);
      this.calls++;
      if (e.attempts.length > 1) {
        const tried = e.attempts.map((a) => `${new URL(a.url).hostname} ${a.outcome} ${a.elapsedMs} ms`);
        this.events.push({ at: this.now, what: `${e.path} answered after ${tried.join(', ')}` });
      }
      // The call was answered (perhaps by a fallback URL): the API works again for this client.
      if (this.apiDownAt !== null && this.apiUpAt === null) this.apiUpAt = this.now;
    });
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async start(joinTimeoutMs: number): Promise<void> {
    if (this.injectionAt !== null) this.startedAt = this.now;
    const tokenFor = () => this.opts.token(this.room, this.id);
    let produce: { video: MediaStreamTrack } | undefined;
    if (this.withMedia) {
      const wrtc = await import('../support/syntheticMedia');
      wrtc.installWrtcGlobals();
      const source = new wrtc.SyntheticVideoSource(160, 120, 10);
      produce = { video: source.track };
      this.mediaStop = () => source.stop();
      const session = this.client.joinRoom(this.room, tokenFor, { produce, consume: true });
      session.on('remoteTrack', (t) => {
        if (t.kind !== 'video') return;
        this.events.push({ at: this.now, what: `remote video of ${t.identity} (${t.region})` });
        this.counters.get(t.consumerId)?.stop();
        let first = true;
        this.counters.set(
          t.consumerId,
          new wrtc.VideoFrameCounter(t.track, () => {
            if (first) this.events.push({ at: this.now, what: `first frame of ${t.identity}` });
            first = false;
            this.remoteFrames.record(t.peerId, this.now);
          }),
        );
      });
      session.on('trackEnded', (t) => {
        this.counters.get(t.consumerId)?.stop();
        this.counters.delete(t.consumerId);
      });
      this.session = session;
    } else {
      this.session = this.client.joinRoom(this.room, tokenFor, { consume: false });
    }
    const session = this.session;
    session.on('joined', (e) => {
      this.joinedAt = this.now;
      this.onJoined(e);
    });
    session.on('reconnecting', (e) => {
      this.events.push({ at: this.now, what: `reconnecting (${e.reason}, attempt ${e.attempt})` });
      if (this.injectionAt !== null && this.sessionDownAt === null) this.sessionDownAt = this.now;
      if (this.injectionAt !== null && e.attempt === 1) {
        if (e.reason === 'room_moved') this.roomMoves++;
        else this.signalingLostAt ??= this.now;
      }
    });
    // A make-before-break switch never goes through `reconnecting`: its suspicion is the detection.
    session.on('suspected', (e) => {
      this.events.push({ at: this.now, what: `suspected ${e.serverId} (${e.signal}): switching` });
      if (this.injectionAt !== null && this.sessionDownAt === null) this.sessionDownAt = this.now;
    });
    session.on('switchCancelled', (e) => {
      this.events.push({ at: this.now, what: `${e.serverId} answered again: switch dropped` });
      if (this.injectionAt !== null && this.sessionDownAt !== null) this.rejoinedAt = this.now;
    });
    session.on('reconnected', (e) => {
      this.events.push({
        at: this.now,
        what: `reconnected to ${e.serverId} after ${e.downtimeMs} ms${e.mode === 'switch' ? ` (switch, ${e.reason})` : ''}, the attempt's server join and media ${e.rejoinMs} ms`,
      });
      this.onJoined(e);
      if (this.injectionAt !== null && this.sessionDownAt !== null) {
        this.rejoinedAt = this.now;
      }
    });
    session.on('error', (e) => this.events.push({ at: this.now, what: `error: ${e.error.message}` }));
    await Promise.race([
      session.ready,
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`${this.id} did not join within ${joinTimeoutMs} ms`)),
          joinTimeoutMs,
        ),
      ),
    ]);
    this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
  }

  /** True once remote video frames arrived (steady-state check for media clients). */
  async mediaFlowing(timeoutMs: number): Promise<boolean> {
    const deadline = this.now + timeoutMs;
    while (this.now < deadline) {
      if (this.remoteFrames.frames >= MEDIA_FRAMES_TO_COUNT) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  /** True once video frames arrived from each of `others` (by any of their peer ids). */
  async receivesFrom(others: readonly SimulatedClient[], timeoutMs: number): Promise<boolean> {
    const deadline = this.now + timeoutMs;
    while (this.now < deadline) {
      if (others.every((o) => this.remoteFrames.framesFrom(o.peerIds) >= MEDIA_FRAMES_TO_COUNT)) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  markInjection(at: number): void {
    this.injectionAt = at;
    this.remoteFrames.trim(at);
  }

  /** This media client for the survivors' gap measurement (scripts/chaos/survivors.ts). */
  witness(): MediaWitness {
    return {
      id: this.id,
      serverRegionBefore: this.before.serverRegion,
      peerIds: [...this.peerIds],
      frames: this.remoteFrames,
    };
  }

  private countRequests(total: number, failures: number): void {
    this.requests += total;
    this.failed += failures;
    if (failures > 0 && this.apiDownAt === null) this.apiDownAt = this.now;
  }

  /**
   * A client is disrupted through its session (signaling lost), its API (calls failing), or both; it
   * has recovered when every disrupted part works again.
   */
  outcome(): ClientOutcome {
    const rel = (t: number | null) => (t === null || this.injectionAt === null ? null : t - this.injectionAt);
    const downs = [this.sessionDownAt, this.apiDownAt].filter((t): t is number => t !== null);
    const detectedAt = downs.length ? Math.min(...downs) : null;
    const sessionOk = this.sessionDownAt === null || this.rejoinedAt !== null;
    const apiOk = this.apiDownAt === null || this.apiUpAt !== null;
    const recoveredAt =
      detectedAt !== null && sessionOk && apiOk ? Math.max(this.rejoinedAt ?? 0, this.apiUpAt ?? 0) : null;
    return {
      id: this.id,
      location: this.location.name,
      kind: this.kind,
      withMedia: this.withMedia,
      forcedRelay: this.forcedRelay,
      apiRegionBefore: this.before.apiRegion,
      serverRegionBefore: this.before.serverRegion,
      requestsAfterInjection: this.requests,
      failedRequestsAfterInjection: this.failed,
      callsAfterInjection: this.calls,
      failedCallsAfterInjection: this.failedCalls,
      sessionDownAtMs: rel(this.sessionDownAt),
      signalingLostAtMs: rel(this.signalingLostAt),
      roomMovesAfterInjection: this.roomMoves,
      startedAfterInjection: this.startedAt !== null,
      startedAtMs: rel(this.startedAt),
      joinedAtMs: this.startedAt !== null ? rel(this.joinedAt) : null,
      signalingUrl: this.signalingUrl,
      detectedAtMs: rel(detectedAt),
      recoveredAtMs: rel(recoveredAt),
      mediaAtMs: rel(this.mediaAt),
      serverRegionAfter: this.serverRegion || null,
      events: this.events
        .filter((e) => this.injectionAt !== null && e.at >= this.injectionAt)
        .map((e) => ({ atMs: e.at - this.injectionAt!, what: e.what })),
    };
  }

  private before = { apiRegion: '', serverRegion: '' };

  /** Freezes where the client stood at the injection (its API region and media server region). */
  snapshotBefore(): void {
    this.before = { apiRegion: this.apiRegion, serverRegion: this.serverRegion };
  }

  async stop(): Promise<void> {
    clearInterval(this.probeTimer);
    for (const counter of this.counters.values()) counter.stop();
    this.counters.clear();
    this.mediaStop?.();
    await this.session?.leave().catch(() => undefined);
    this.client.close();
  }

  private onJoined(e: {
    apiUrl: string;
    region: string;
    serverId: string;
    signalingUrl: string;
    peerId: string;
  }): void {
    const { apiUrl, region, serverId, signalingUrl } = e;
    if (!this.peerIds.includes(e.peerId)) this.peerIds.push(e.peerId);
    this.apiRegion = this.regionOfApiUrl(apiUrl);
    this.serverRegion = region;
    this.serverId = serverId;
    this.signalingUrl = signalingUrl;
  }

  /**
   * Which region's LB answered. Region names (either family) name it directly; `api.<domain>` is
   * latency-routed, and in the steady state (every region healthy, which the run checks before it
   * injects) it answers the client's own location; `api-backup.<backupDomain>` is weighted, so which
   * region answered is not known from the name.
   */
  private regionOfApiUrl(apiUrl: string): string {
    const host = new URL(apiUrl).hostname;
    const direct = this.opts.regions.find(
      (r) =>
        r.address === host ||
        host === `${r.name}.api.${this.opts.domain}` ||
        host === `${r.name}.api-backup.${this.opts.backupDomain}`,
    );
    if (direct) return direct.name;
    if (host === `api.${this.opts.domain}`) return this.location.name;
    return 'backup';
  }

  private async probe(): Promise<void> {
    if (!this.session || this.session.connectionState === 'closed') return;
    try {
      const token = await this.opts.token(this.room, this.id);
      await this.client.api.call(`/v1/rooms/${this.room}/join`, { body: {}, token });
    } catch (err) {
      // Failed attempts are counted through `served` or below; the session's own rejoin does the rest.
      if (this.injectionAt !== null && (err as Error).name === 'ApiUnavailableError') {
        const attempts = (err as { attempts?: unknown[] }).attempts?.length ?? 1;
        this.countRequests(attempts, attempts);
        this.calls++;
        this.failedCalls++;
      }
    }
  }

  /**
   * Called periodically during the observation: a media client that rejoined counts as having media
   * again once new frames arrive on its (new) remote video track.
   */
  pollMedia(): void {
    if (!this.withMedia || this.mediaAt !== null) return;
    // Media is back at the first remote frame decoded after the (re)join, once more have followed it:
    // the decode time as recorded, not the time of this poll.
    const since = this.startedAt ?? this.rejoinedAt;
    if (since === null) return;
    this.mediaAt = this.remoteFrames.flowingSince(since, MEDIA_FRAMES_TO_COUNT);
  }
}
