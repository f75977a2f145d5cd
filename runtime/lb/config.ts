import type { LbTurnSettings } from '../protocol/lbEnvironment';
import type { KeySet } from '../protocol/tokens';

/**
 * What one LB process needs to know, already validated. `server.ts` builds it from the environment
 * (see env.ts); tests build it with `lbConfig({...})` and small intervals.
 */

/** Epoch milliseconds. Injected so tests can age heartbeats without sleeping. */
export type Clock = () => number;

export interface LbLimits {
  /** Largest request body; a join body is a few hundred bytes. */
  readonly bodyLimitBytes: number;
  /** Joins per token subject (or per IP when the token does not verify) per minute. */
  readonly joinsPerMinute: number;
  /** Requests per IP per minute on every other route and on the 404 handler. */
  readonly requestsPerMinute: number;
  /** Health probes per IP per minute: Route 53 probes from many checkers, the emulator from one address. */
  readonly healthProbesPerMinute: number;
  /** Time to receive a request's headers; a client trickling them must not hold a socket. */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request; a slow sender must not hold a socket. */
  readonly requestTimeoutMs: number;
  /**
   * Idle keep-alive. Above the ALB's idle timeout (120 s, lib/lb-service.ts ALB_IDLE_TIMEOUT) so the ALB,
   * not us, closes idle connections; closing first races the ALB's next request and it answers a 502.
   */
  readonly keepAliveTimeoutMs: number;
  /** Client → server signaling messages per second per connection (sustained rate of the token bucket). */
  readonly relayMessagesPerSecond: number;
  /** Burst allowance of the same bucket: a join sends a handful of requests back to back. */
  readonly relayMessageBurst: number;
  /** Ping period of both legs of a relay; a peer that misses one pong is dropped. */
  readonly relayKeepaliveMs: number;
  /** Frames from the client kept while the media server connection opens. */
  readonly relayPendingFrames: number;
  /** How long the media server may take to accept the relayed connection. */
  readonly relayConnectTimeoutMs: number;
  /** Concurrent relays from one client address (a NAT can hold a whole office). */
  readonly relaysPerAddress: number;
  /** Concurrent relays of one identity (a user in a few rooms, tabs or devices). */
  readonly relaysPerIdentity: number;
  /** Joins answered at once; more are shed with 503 + Retry-After (LoadShedder.ts). */
  readonly maxConcurrentJoins: number;
  /** Event-loop delay (ms) above which joins are shed, so the relays of live calls keep their latency. */
  readonly maxEventLoopDelayMs: number;
  /** `Retry-After` of a shed join (s); the SDK adds jitter. */
  readonly shedRetryAfterSeconds: number;
}

export interface LbConfig {
  /** AWS region this LB serves. */
  readonly region: string;
  /** This region's public API base, e.g. `https://eu-west-1.api.example.com` or `http://127.0.2.1:8080`. */
  readonly publicApiUrl: string;
  /**
   * This region's API base in the backup name family, e.g. `https://eu-west-1.api-backup.example.net`;
   * with `backupDomain`, joins that came in on a backup name are answered in backup names.
   */
  readonly backupApiUrl?: string;
  /** The backup zone's domain: a request whose Host is under it is answered in the backup family. */
  readonly backupDomain?: string;
  /** This region by IP address, answered to IP-literal Hosts (the local stack's browser demo only). */
  readonly addressApiUrl?: string;
  /** Keys app backends sign join tokens with; the LB only verifies with them. */
  readonly joinTokenKeys: KeySet;
  /** Keys the LB signs media tokens with (the current one) and media servers verify. */
  readonly mediaTokenKeys: KeySet;
  /** Origins allowed to call the API from a browser (the demo page). Empty: no CORS headers. */
  readonly corsOrigins: readonly string[];
  /** Trust X-Forwarded-For from this many proxies (1 behind an ALB) so rate limits key the real client. */
  readonly trustProxyHops: number;
  /**
   * The regions' TURN relays: join answers carry the serving region's with a credential signed by
   * `secret.current`. Undefined: answers carry no `iceServers`.
   */
  readonly turn: LbTurnConfig | undefined;
  readonly limits: LbLimits;
  /** Background refresh period of the server/region cache; 0 disables the timer (tests refresh by hand). */
  readonly fleetRefreshMs: number;
  /** A join older than this refreshes the cache itself (the background refresh has been failing). */
  readonly fleetMaxAgeMs: number;
  /** Period of the region summary write; 0 disables the timer. */
  readonly summaryIntervalMs: number;
  /** `/health` answers within this, whatever the replica does. */
  readonly healthDeadlineMs: number;
  /**
   * How old a view `/health` and `/v1/regions` may answer from: both read the fleet cache, refreshed at
   * most this often however many probes arrive, so a flood of probes costs the table nothing extra.
   */
  readonly healthCacheMs: number;
}

export interface LbTurnConfig extends LbTurnSettings {
  /** The relays' shared secret; the current key signs (the relays also accept the `verify` ones). */
  readonly secret: KeySet;
}

export const DEFAULT_LIMITS: LbLimits = {
  bodyLimitBytes: 16 * 1024,
  joinsPerMinute: 60,
  requestsPerMinute: 600,
  healthProbesPerMinute: 1_200,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 125_000,
  relayMessagesPerSecond: 50,
  relayMessageBurst: 100,
  relayKeepaliveMs: 5_000,
  relayPendingFrames: 64,
  relayConnectTimeoutMs: 5_000,
  relaysPerAddress: 500,
  relaysPerIdentity: 8,
  // A join costs a few table reads and one conditional write; 64 at once is far above a region's
  // steady state and low enough that a herd's joins wait here in the client's jittered backoff
  // rather than in this process's queue.
  maxConcurrentJoins: 64,
  // A loop that stalls 200 ms within a quarter second is saturated, not just collecting garbage.
  maxEventLoopDelayMs: 200,
  shedRetryAfterSeconds: 1,
};

type RequiredSettings = 'region' | 'publicApiUrl' | 'joinTokenKeys' | 'mediaTokenKeys';

export type LbConfigInput = Pick<LbConfig, RequiredSettings> &
  Partial<Omit<LbConfig, RequiredSettings | 'limits'>> & { limits?: Partial<LbLimits> };

export function lbConfig(input: LbConfigInput): LbConfig {
  return {
    corsOrigins: [],
    trustProxyHops: 0,
    turn: undefined,
    fleetRefreshMs: 1_000,
    fleetMaxAgeMs: 5_000,
    summaryIntervalMs: 5_000,
    healthDeadlineMs: 1_500,
    healthCacheMs: 1_000,
    ...input,
    publicApiUrl: input.publicApiUrl.replace(/\/+$/, ''),
    ...(input.backupApiUrl ? { backupApiUrl: input.backupApiUrl.replace(/\/+$/, '') } : {}),
    ...(input.addressApiUrl ? { addressApiUrl: input.addressApiUrl.replace(/\/+$/, '') } : {}),
    limits: { ...DEFAULT_LIMITS, ...input.limits },
  };
}
