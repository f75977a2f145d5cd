/**
 * The SDK's entry object: one per app (or per simulated client). It owns the API client with its
 * fallback chain (extended by the RTT election's ranking and by every session's join answers), the
 * optional RTT election and the platform, and creates sessions.
 *
 * The election starts at construction and a join waits for it at most one attempt timeout: RTTs make
 * placement better, but a blackholed region must not delay every first join by its probe timeouts.
 */
import { ApiClient } from './ApiClient';
import { type ClientConfig, type ClientConfigInput, parseClientConfig } from './config';
import type { TokenSource } from './connectOnce';
import { browserPlatform, type Platform } from './platform';
import { type RegionRtt, RttElection } from './RttElection';
import { type JoinOptions, Session } from './Session';
import { sleep } from './timers';

export interface ClientOptions {
  /** Where HTTP, WebSockets and Devices come from. @default the browser's (fetch, WebSocket); Node code uses `createNodeClient` */
  readonly platform?: Platform;
  /** Random source for the rejoin backoff's jitter (tests and simulations seed it). @default Math.random */
  readonly random?: () => number;
  /** The failure detector's clock (tests run it faster than the wall clock). @default performance.now */
  readonly detectorClock?: () => number;
}

export class Client {
  readonly config: ClientConfig;
  readonly api: ApiClient;
  readonly election: RttElection | undefined;
  private readonly platform: Platform;
  private readonly sessions = new Set<Session>();
  private readonly electionReady: Promise<unknown> | undefined;
  private readonly random: (() => number) | undefined;
  private readonly detectorClock: (() => number) | undefined;

  /** The config is the edge's: it is parsed here once, and each part gets the few values it needs. */
  constructor(config: ClientConfigInput | ClientConfig, options: ClientOptions = {}) {
    this.config = parseClientConfig(config);
    this.platform = options.platform ?? browserPlatform();
    this.random = options.random;
    this.detectorClock = options.detectorClock;
    const { apiUrls, regionUrls, rttElection, timeouts } = this.config;
    this.api = new ApiClient({
      http: this.platform.http,
      apiUrls,
      attemptMs: timeouts.attemptMs,
      hedgeMs: timeouts.hedgeMs,
      primaryReprobeMs: timeouts.primaryReprobeMs,
    });
    // Region URLs extend the chain in the order given until an election ranks them (or for good
    // without one): a URL known to be a region's lets a call ask that region's names last.
    if (regionUrls) {
      this.api.setRankedRegions(Object.entries(regionUrls).map(([region, url]) => ({ region, url })));
    }
    if (regionUrls && rttElection) {
      this.election = new RttElection({
        http: this.platform.http,
        regionUrls,
        ...rttElection,
        probeTimeoutMs: timeouts.attemptMs,
      });
      this.election.on('elected', ({ ranking }) => this.api.setRankedRegions(ranking));
      this.electionReady = this.election.elect('initial').catch(() => undefined);
    }
  }

  /**
   * Joins `roomId` and keeps the session alive across failures. Returns at once so listeners can be
   * attached before anything is emitted; `session.ready` resolves at the first join.
   */
  joinRoom(roomId: string, token: TokenSource, options: JoinOptions = {}): Session {
    const { timeouts, backoff, followAlternates, iceTransportPolicy, detection } = this.config;
    const session = new Session({
      ...options,
      roomId,
      token,
      api: this.api,
      platform: this.platform,
      election: this.election,
      signaling: {
        // Opening the socket is one attempt against the region's edge, like one HTTP attempt.
        openTimeoutMs: timeouts.attemptMs,
        requestTimeoutMs: timeouts.requestMs,
        pingMs: timeouts.signalingPingMs,
        pongTimeoutMs: timeouts.signalingPongTimeoutMs,
      },
      backoff,
      followAlternates,
      iceTransportPolicy,
      random: this.random,
      detection,
      detectorClock: this.detectorClock,
      beforeFirstJoin: this.electionReady
        ? () => Promise.race([this.electionReady, sleep(timeouts.attemptMs)]).then(() => undefined)
        : undefined,
    });
    this.sessions.add(session);
    session.on('closed', () => this.sessions.delete(session));
    return session;
  }

  /** Runs an RTT election now (e.g. after the network changed); empty when no region URLs are configured. */
  async elect(): Promise<readonly RegionRtt[]> {
    return this.election ? this.election.elect('requested') : [];
  }

  /** Leaves every session and releases timers, pooled connections and caches. */
  async close(): Promise<void> {
    await Promise.all([...this.sessions].map((s) => s.leave()));
    this.api.close();
    this.election?.close();
    this.platform.close();
  }
}
