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
import { browserPlatform, type Platform } from './platform';
import { type RegionRtt, RttElection } from './RttElection';
import { type JoinOptions, Session, type TokenSource } from './Session';
import { sleep } from './timers';

export class Client {
  readonly config: ClientConfig;
  readonly api: ApiClient;
  readonly election: RttElection | undefined;
  private readonly platform: Platform;
  private readonly sessions = new Set<Session>();
  private readonly electionReady: Promise<unknown> | undefined;
  private readonly random: (() => number) | undefined;

  /** `platform` defaults to the browser's (fetch, WebSocket); Node code uses `createNodeClient`. */
  constructor(config: ClientConfigInput | ClientConfig, platform?: Platform, random?: () => number) {
    this.config = parseClientConfig(config);
    this.platform = platform ?? browserPlatform();
    this.random = random;
    this.api = new ApiClient(this.platform.http, this.config);
    const { regionUrls, rttElection } = this.config;
    if (regionUrls && rttElection) {
      this.election = new RttElection(
        this.platform.http,
        regionUrls,
        rttElection,
        this.config.timeouts.attemptMs,
      );
      this.election.on('elected', ({ ranking }) => this.api.setRankedRegions(ranking));
      this.electionReady = this.election.elect('initial').catch(() => undefined);
    }
  }

  /**
   * Joins `roomId` and keeps the session alive across failures. Returns at once so listeners can be
   * attached before anything is emitted; `session.ready` resolves at the first join.
   */
  joinRoom(roomId: string, token: TokenSource, options: JoinOptions = {}): Session {
    const session = new Session(
      {
        api: this.api,
        platform: this.platform,
        config: this.config,
        election: this.election,
        random: this.random,
        beforeFirstJoin: this.electionReady
          ? () =>
              Promise.race([this.electionReady, sleep(this.config.timeouts.attemptMs)]).then(() => undefined)
          : undefined,
      },
      roomId,
      token,
      options,
    );
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
