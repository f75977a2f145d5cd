/**
 * Reads the media server's environment (set by the CDK user data or the local stack) into a
 * MediaServerConfig. Errors name the variable, its value and what to set instead.
 */
import * as os from 'node:os';
import { z } from 'zod';
import { SERVER_ID_PATTERN } from '../protocol/ids';
import { KeySetError, parseKeySet } from '../protocol/tokens';
import {
  DEFAULT_PEER_LIMITS,
  DEFAULT_ROOM_LIMITS,
  DEFAULT_ROOM_REFRESH_INTERVAL_MS,
  DEFAULT_SIGNALING_LIMITS,
  type MediaServerConfig,
} from './config';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const ipv4 = z
  .string()
  .regex(IPV4, 'must be an IPv4 address such as 10.0.1.23')
  .refine((ip) => ip.split('.').every((o) => Number(o) <= 255), 'must be an IPv4 address such as 10.0.1.23');
const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().min(1);
const durationMs = z.coerce
  .number()
  .int()
  .min(0)
  .max(24 * 3_600_000);

const envSchema = z
  .object({
    REGION: z.string().min(1, 'is required (the AWS region this server runs in)'),
    TABLE_NAME: z.string().min(1, 'is required (the global table name)'),
    DYNAMODB_ENDPOINT: z.url().optional(),
    MEDIA_TOKEN_KEYS: z
      .string()
      .min(1, 'is required (the media-token key set, JSON)')
      .transform((text, ctx) => {
        try {
          return parseKeySet(text, 'the media-token key set');
        } catch (err) {
          if (!(err instanceof KeySetError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.detail });
          return z.NEVER;
        }
      }),
    SERVER_ID: z
      .string()
      .regex(new RegExp(SERVER_ID_PATTERN), 'must be 1-64 characters of letters, digits, ".", "_" or "-"'),
    LISTEN_HOST: ipv4.default('0.0.0.0'),
    SIGNALING_PORT: port,
    PRIVATE_ENDPOINT: z.string().regex(/^wss?:\/\/[^/\s]+$/, 'must be ws://host:port (no path)'),
    PUBLIC_IP: ipv4,
    RTC_LISTEN_IP: ipv4.optional(),
    RTC_MIN_PORT: port,
    RTC_MAX_PORT: port,
    NUM_WORKERS: positiveInt.max(256).optional(),
    CAPACITY: positiveInt.default(500),
    DRAIN_TIMEOUT_MS: durationMs.default(15 * 60_000),
    HEARTBEAT_INTERVAL_MS: positiveInt.max(60_000).default(2_000),
    ROOM_CHECK_INTERVAL_MS: positiveInt.max(600_000).default(5_000),
    // Below the room item's 24 h TTL with room for missed refreshes.
    ROOM_REFRESH_INTERVAL_MS: positiveInt.max(12 * 3_600_000).default(DEFAULT_ROOM_REFRESH_INTERVAL_MS),
    MAX_ROOM_PEERS: positiveInt.max(10_000).default(DEFAULT_ROOM_LIMITS.maxPeers),
    WS_PING_INTERVAL_MS: positiveInt.max(60_000).default(DEFAULT_SIGNALING_LIMITS.pingIntervalMs),
    JOIN_TIMEOUT_MS: positiveInt.max(600_000).default(DEFAULT_SIGNALING_LIMITS.joinTimeoutMs),
    WORKER_LOG_LEVEL: z.enum(['debug', 'warn', 'error', 'none']).default('warn'),
    DEBUG_ENDPOINTS: z.enum(['true', 'false']).default('false'),
  })
  .refine((e) => e.RTC_MIN_PORT <= e.RTC_MAX_PORT, {
    path: ['RTC_MAX_PORT'],
    message: 'must be >= RTC_MIN_PORT',
  });

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function readMediaServerConfig(env: NodeJS.ProcessEnv = process.env): MediaServerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const value = env[name];
      // Never echo a key into logs.
      const shown = name === 'MEDIA_TOKEN_KEYS' ? ' (set, not shown)' : `=${JSON.stringify(value)}`;
      return `  ${name}${value === undefined ? ' (unset)' : shown}: ${issue.message}`;
    });
    throw new ConfigError(`invalid media server environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const numWorkers = e.NUM_WORKERS ?? os.availableParallelism();
  const ports = e.RTC_MAX_PORT - e.RTC_MIN_PORT + 1;
  if (ports < numWorkers) {
    throw new ConfigError(
      `RTC_MIN_PORT..RTC_MAX_PORT (${e.RTC_MIN_PORT}-${e.RTC_MAX_PORT}) holds ${ports} ports for ${numWorkers} workers; ` +
        'widen the range or lower NUM_WORKERS',
    );
  }
  return {
    region: e.REGION,
    serverId: e.SERVER_ID,
    tableName: e.TABLE_NAME,
    dynamoEndpoint: e.DYNAMODB_ENDPOINT,
    mediaTokenKeys: e.MEDIA_TOKEN_KEYS,
    listenHost: e.LISTEN_HOST,
    signalingPort: e.SIGNALING_PORT,
    privateEndpoint: e.PRIVATE_ENDPOINT,
    publicIp: e.PUBLIC_IP,
    // A loopback public address is a local stack: bind it, so regions sharing a port range do not collide.
    // Elsewhere the public address is NATed onto the instance and not bindable: bind every interface.
    rtcListenIp: e.RTC_LISTEN_IP ?? (e.PUBLIC_IP.startsWith('127.') ? e.PUBLIC_IP : '0.0.0.0'),
    rtcMinPort: e.RTC_MIN_PORT,
    rtcMaxPort: e.RTC_MAX_PORT,
    numWorkers,
    capacity: e.CAPACITY,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    roomCheckIntervalMs: e.ROOM_CHECK_INTERVAL_MS,
    roomRefreshIntervalMs: e.ROOM_REFRESH_INTERVAL_MS,
    workerLogLevel: e.WORKER_LOG_LEVEL,
    signaling: {
      ...DEFAULT_SIGNALING_LIMITS,
      pingIntervalMs: e.WS_PING_INTERVAL_MS,
      joinTimeoutMs: e.JOIN_TIMEOUT_MS,
    },
    peer: DEFAULT_PEER_LIMITS,
    room: { maxPeers: e.MAX_ROOM_PEERS },
    debugEndpoints: e.DEBUG_ENDPOINTS === 'true',
  };
}
