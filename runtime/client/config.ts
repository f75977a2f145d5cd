/**
 * The client config: how a client finds the platform and how patiently it retries. Validated with zod;
 * every default is here, every error names the field.
 *
 * `apiUrls` is the fallback chain in order: the latency-routed primary name (`https://api.<domain>`),
 * then the independent backup name (`https://api-backup.<backupDomain>`), then anything else the
 * operator adds. `regionUrls` name each region directly; they extend the fallback chain after
 * `apiUrls`, in the order given until the optional RTT election ranks them. Even without them a client
 * is not stuck when both names fail: each join answer's `alternates` (region URLs the platform itself
 * recommends) extend the chain at runtime, after the configured and ranked URLs (ApiClient.ts states
 * the whole policy).
 *
 * `dns` and `localAddress` are for Node only (browsers resolve names themselves and pick their own
 * source address); `nodePlatform` reads them, `browserPlatform` ignores them.
 */
import { z } from 'zod';
import { baseUrlSchema } from './baseUrl';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HOST_PORT = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/;
const ZONE = /^(\*|(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*)$/;

const positiveMs = (max: number) => z.number().int().min(1).max(max);

const timeoutsSchema = z
  .object({
    /** One HTTP attempt against one URL; also bounds opening the signaling socket. */
    attemptMs: positiveMs(120_000).default(3_000),
    /**
     * How long one API URL may stay silent before the next one is tried beside it (hedging). Above the
     * API's normal latency, so a healthy primary is rarely doubled; at or above attemptMs it is off.
     */
    hedgeMs: positiveMs(120_000).default(1_000),
    /** One signaling request (join, produce, consume...) before the session treats the server as lost. */
    requestMs: positiveMs(120_000).default(10_000),
    /**
     * Interval of the app-level `ping` on the signaling socket; it notices a dead server behind a live
     * LB. Short, because a missed ping is half of the failure detector's evidence (`detection`); two
     * tiny frames a second per client are cheap next to the media.
     */
    signalingPingMs: positiveMs(600_000).default(500),
    /** How long one `ping` may stay unanswered before the server counts as gone. */
    signalingPongTimeoutMs: positiveMs(600_000).default(3_000),
    /** While served by a non-primary URL, how often to check whether the primary answers again. */
    primaryReprobeMs: positiveMs(3_600_000).default(15_000),
  })
  .strict();

const backoffSchema = z
  .object({
    baseMs: positiveMs(60_000).default(500),
    capMs: positiveMs(600_000).default(10_000),
    /** Rejoin attempts per outage before the session gives up and closes. */
    maxAttempts: z.number().int().min(1).max(1_000).default(30),
    /**
     * Attempts for the first join: a user waiting at a join button should hear about a failure within
     * seconds, while an established call is worth a long rejoin effort.
     */
    joinAttempts: z.number().int().min(1).max(1_000).default(3),
  })
  .strict()
  .refine((b) => b.baseMs <= b.capMs, { message: 'baseMs must not exceed capMs', path: ['baseMs'] });

const rttSchema = z
  .object({
    /** Probes per region; the median resists one slow outlier. */
    samples: z.number().int().min(1).max(20).default(3),
    /** How often the current region is re-probed to notice degradation. */
    recheckMs: positiveMs(3_600_000).default(30_000),
    /** A region is degraded when its RTT exceeds its elected RTT by this factor (and the margin). */
    degradedFactor: z.number().min(1).max(100).default(2),
    /** ...and by at least this many ms, so loopback-scale jitter does not count as degradation. */
    degradedMarginMs: z.number().int().min(0).max(60_000).default(50),
  })
  .strict();

/**
 * The failure detector (FailureDetector.ts) and the make-before-break switch it starts. The defaults
 * notice a frozen server within about a second while a muted room (RTCP and ICE answers only, gaps up
 * to ~2 s) or 300 ms of network jitter never switch: both halves of the evidence must agree.
 */
const detectionSchema = z
  .object({
    statsIntervalMs: positiveMs(10_000).default(250),
    /**
     * No inbound byte on any transport of the server for this long: media stalled. A talking room
     * brings about 80 packets a second (audio every 20 ms, video at 30 fps) plus RTCP, so half a
     * second of nothing is far outside its normal gaps; a muted room has longer ones, which the ping
     * half of the evidence covers.
     */
    mediaStallMs: positiveMs(60_000).default(500),
    /**
     * A ping unanswered this long is a miss (the pong timeout later declares the server lost). Five
     * times a continent's round trip, and a 300 ms jitter each way rarely reaches it; a slow answer
     * alone never switches, media must have stalled too.
     */
    pingMissMs: positiveMs(60_000).default(500),
    /**
     * API hedging delay of a switch's join: the client already believes something is wrong, so a URL
     * that stays silent (the suspected region's own LB behind the primary name) costs this, not `hedgeMs`.
     */
    switchHedgeMs: positiveMs(60_000).default(250),
  })
  .strict();

const dnsServer = z
  .string()
  .refine((s) => HOST_PORT.test(s), { message: 'must be "ipv4:port" such as "127.0.0.1:5353"' });

const dnsSchema = z
  .object({
    /** Shorthand for `servers: { '*': server }`. */
    server: dnsServer.optional(),
    /**
     * DNS server per zone: a name uses the server of its longest matching zone (`api-backup.mr.test`
     * beats `mr.test`); `*` matches every name; a name matching nothing uses the system resolver.
     */
    servers: z
      .record(
        z
          .string()
          .toLowerCase()
          .refine((k) => ZONE.test(k), { message: 'zone keys must be DNS names or "*"' }),
        dnsServer,
      )
      .optional(),
    /** Source address of DNS queries (the local DNS emulator locates clients by it); default: `localAddress`. */
    localAddress: z.string().regex(IPV4, 'must be an IPv4 address').optional(),
    /** Upper bound on how long an answer is cached, whatever its TTL says. */
    maxCacheSeconds: z.number().int().min(0).max(3_600).default(60),
  })
  .strict()
  .refine((d) => d.server !== undefined || (d.servers !== undefined && Object.keys(d.servers).length > 0), {
    message: 'needs "server" or a non-empty "servers" map',
  })
  .transform(({ server, servers, ...rest }) => ({
    ...rest,
    servers: { ...(server ? { '*': server } : {}), ...servers } as Record<string, string>,
  }));

export const clientConfigSchema = z
  .object({
    apiUrls: z
      .array(baseUrlSchema)
      .min(1, 'must list at least one API base URL (primary first, then backup)'),
    regionUrls: z
      .record(
        z.string().regex(/^[a-z0-9-]{1,32}$/, 'region names are lowercase such as "eu-west-1"'),
        baseUrlSchema,
      )
      .optional(),
    timeouts: timeoutsSchema.prefault({}),
    backoff: backoffSchema.prefault({}),
    /**
     * Whether join answers' `alternates` extend the fallback chain. Off leaves a client with its
     * configured names only: the DNS-only baseline the chaos script measures against.
     */
    followAlternates: z.boolean().default(true),
    /** Failure detection and make-before-break switching; `false` leaves only the hard losses. */
    detection: z.union([z.literal(false), detectionSchema]).prefault({}),
    /** RTT election over `regionUrls`; on by default when region URLs are configured. */
    rttElection: z.union([z.literal(false), rttSchema]).optional(),
    dns: dnsSchema.optional(),
    /** Node only: source address for HTTP and WebSocket connections, so a simulated client has a location. */
    localAddress: z.string().regex(IPV4, 'must be an IPv4 address').optional(),
    /**
     * Which ICE candidates media may use: `all` (direct to the media server when possible, the region's
     * TURN relay from the join answer when not) or `relay` (only through the relay: for networks that
     * allow nothing but the relay's ports, and to test the relayed path). A `relay` client cannot send
     * media when a join answer carries no relay.
     */
    iceTransportPolicy: z.enum(['all', 'relay']).default('all'),
  })
  .strict();

export type ClientConfigInput = z.input<typeof clientConfigSchema>;
type Parsed = z.output<typeof clientConfigSchema>;
export type TimeoutsConfig = Parsed['timeouts'];
export type BackoffConfig = Parsed['backoff'];
export type RttElectionConfig = z.output<typeof rttSchema>;
export type DetectionOptions = z.output<typeof detectionSchema>;
export type DnsConfig = NonNullable<Parsed['dns']>;

export type ClientConfig = Omit<Parsed, 'rttElection'> & {
  /** Resolved: `false` when disabled or when no region URLs are configured. */
  readonly rttElection: RttElectionConfig | false;
};

/** Thrown for an invalid client config; the message lists every problem with its field. */
export class ClientConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid client config:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ClientConfigError';
  }
}

export function parseClientConfig(raw: unknown): ClientConfig {
  const result = clientConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ClientConfigError(
      result.error.issues.map((issue) => {
        const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
        return `${where.replace(/^\./, '') || '(root)'}: ${issue.message.replace(/^Invalid input: /, '')}`;
      }),
    );
  }
  const { rttElection, ...rest } = result.data;
  const hasRegions = rest.regionUrls !== undefined && Object.keys(rest.regionUrls).length > 0;
  return {
    ...rest,
    rttElection: rttElection === false || !hasRegions ? false : (rttElection ?? rttSchema.parse({})),
  };
}
