/**
 * The media server's environment contract: `mediaEnvironment` writes it (the CDK host script, the local
 * stack, the tests), `readMediaEnvironment` reads it once at start (runtime/media/env.ts turns it into
 * the server's config and applies the server's own defaults). On AWS the host script writes the shared
 * part at deploy time and the per-instance part (MEDIA_INSTANCE_VARIABLES: the instance id, its
 * addresses, the media-token keys read from Secrets Manager) at boot.
 */
import { z } from 'zod';
import {
  definedVariables,
  keySetVariable,
  logLevelVariable,
  readEnvironment,
  type LogLevel,
} from './environment';
import { SERVER_ID_PATTERN } from './ids';
import { isAwsRegion } from './regions';
import type { KeySet } from './tokens';

export const WORKER_LOG_LEVELS = ['debug', 'warn', 'error', 'none'] as const;
export type WorkerLogLevel = (typeof WORKER_LOG_LEVELS)[number];

/** Variables only the instance knows, written at boot; `mediaTokenKeys` is a secret. */
export const MEDIA_INSTANCE_VARIABLES = {
  serverId: 'SERVER_ID',
  publicIp: 'PUBLIC_IP',
  privateEndpoint: 'PRIVATE_ENDPOINT',
  mediaTokenKeys: 'MEDIA_TOKEN_KEYS',
} as const;

/** What every media server of a fleet shares. */
export interface MediaSharedSettings {
  readonly region: string;
  readonly tableName: string;
  readonly dynamoEndpoint?: string;
  /** Bind address of the signaling server. @default '0.0.0.0' */
  readonly listenHost?: string;
  readonly signalingPort: number;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  /** @default the public address when it is loopback (local stack), else '0.0.0.0' */
  readonly rtcListenIp?: string;
  /** @default one per CPU */
  readonly numWorkers?: number;
  /** Load units the server accepts. */
  readonly capacity?: number;
  readonly drainTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly roomCheckIntervalMs?: number;
  readonly roomRefreshIntervalMs?: number;
  readonly maxRoomPeers?: number;
  readonly pingIntervalMs?: number;
  readonly joinTimeoutMs?: number;
  readonly workerLogLevel?: WorkerLogLevel;
  readonly debugEndpoints?: boolean;
  readonly logLevel?: LogLevel;
  /** `current` in production: fail at start rather than fall back to the CI-built legacy worker. */
  readonly engine?: 'current' | 'legacy';
}

/** What only one instance knows. */
export interface MediaInstanceSettings {
  readonly serverId: string;
  readonly publicIp: string;
  /** `ws://<private address>:<signaling port>`: where the region's LB relays signaling. */
  readonly privateEndpoint: string;
  /** The media-token key set document (JSON). */
  readonly mediaTokenKeys: string;
}

/** The media server's environment: the shared part, and the instance's when known. */
export function mediaEnvironment(
  shared: MediaSharedSettings,
  instance?: MediaInstanceSettings,
): Record<string, string> {
  const v = MEDIA_INSTANCE_VARIABLES;
  return definedVariables({
    REGION: shared.region,
    TABLE_NAME: shared.tableName,
    DYNAMODB_ENDPOINT: shared.dynamoEndpoint,
    LISTEN_HOST: shared.listenHost,
    SIGNALING_PORT: shared.signalingPort,
    RTC_MIN_PORT: shared.rtcMinPort,
    RTC_MAX_PORT: shared.rtcMaxPort,
    RTC_LISTEN_IP: shared.rtcListenIp,
    NUM_WORKERS: shared.numWorkers,
    CAPACITY: shared.capacity,
    DRAIN_TIMEOUT_MS: shared.drainTimeoutMs,
    HEARTBEAT_INTERVAL_MS: shared.heartbeatIntervalMs,
    ROOM_CHECK_INTERVAL_MS: shared.roomCheckIntervalMs,
    ROOM_REFRESH_INTERVAL_MS: shared.roomRefreshIntervalMs,
    MAX_ROOM_PEERS: shared.maxRoomPeers,
    WS_PING_INTERVAL_MS: shared.pingIntervalMs,
    JOIN_TIMEOUT_MS: shared.joinTimeoutMs,
    WORKER_LOG_LEVEL: shared.workerLogLevel,
    DEBUG_ENDPOINTS: shared.debugEndpoints,
    LOG_LEVEL: shared.logLevel,
    MEDIA_ENGINE: shared.engine,
    [v.serverId]: instance?.serverId,
    [v.publicIp]: instance?.publicIp,
    [v.privateEndpoint]: instance?.privateEndpoint,
    [v.mediaTokenKeys]: instance?.mediaTokenKeys,
  });
}

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

const schema = z
  .object({
    // Peers are told it as the region of every peer joined here (signaling `region`): a name, checked
    // like the LB's.
    REGION: z.string().refine(isAwsRegion, { message: 'must be an AWS region name such as "eu-west-1"' }),
    TABLE_NAME: z.string().min(1, 'is required (the global table name)'),
    DYNAMODB_ENDPOINT: z.url().optional(),
    MEDIA_TOKEN_KEYS: keySetVariable('the media-token key set'),
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
    ROOM_REFRESH_INTERVAL_MS: positiveInt.max(12 * 3_600_000).optional(),
    MAX_ROOM_PEERS: positiveInt.max(10_000).optional(),
    WS_PING_INTERVAL_MS: positiveInt.max(60_000).optional(),
    JOIN_TIMEOUT_MS: positiveInt.max(600_000).optional(),
    WORKER_LOG_LEVEL: z.enum(WORKER_LOG_LEVELS).default('warn'),
    DEBUG_ENDPOINTS: z.enum(['true', 'false']).default('false'),
    LOG_LEVEL: logLevelVariable,
  })
  .refine((e) => e.RTC_MIN_PORT <= e.RTC_MAX_PORT, {
    path: ['RTC_MAX_PORT'],
    message: 'must be >= RTC_MIN_PORT',
  });

export interface MediaEnvironment {
  readonly region: string;
  readonly tableName: string;
  readonly dynamoEndpoint: string | undefined;
  readonly mediaTokenKeys: KeySet;
  readonly serverId: string;
  readonly listenHost: string;
  readonly signalingPort: number;
  readonly privateEndpoint: string;
  readonly publicIp: string;
  readonly rtcListenIp: string | undefined;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  readonly numWorkers: number | undefined;
  readonly capacity: number;
  readonly drainTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly roomCheckIntervalMs: number;
  readonly roomRefreshIntervalMs: number | undefined;
  readonly maxRoomPeers: number | undefined;
  readonly pingIntervalMs: number | undefined;
  readonly joinTimeoutMs: number | undefined;
  readonly workerLogLevel: WorkerLogLevel;
  readonly debugEndpoints: boolean;
  readonly logLevel: LogLevel;
}

/** Reads and checks the media server's environment; throws EnvironmentError naming every bad variable. */
export function readMediaEnvironment(env: Readonly<Record<string, string | undefined>>): MediaEnvironment {
  const e = readEnvironment('media server', schema, env, new Set([MEDIA_INSTANCE_VARIABLES.mediaTokenKeys]));
  return {
    region: e.REGION,
    tableName: e.TABLE_NAME,
    dynamoEndpoint: e.DYNAMODB_ENDPOINT,
    mediaTokenKeys: e.MEDIA_TOKEN_KEYS,
    serverId: e.SERVER_ID,
    listenHost: e.LISTEN_HOST,
    signalingPort: e.SIGNALING_PORT,
    privateEndpoint: e.PRIVATE_ENDPOINT,
    publicIp: e.PUBLIC_IP,
    rtcListenIp: e.RTC_LISTEN_IP,
    rtcMinPort: e.RTC_MIN_PORT,
    rtcMaxPort: e.RTC_MAX_PORT,
    numWorkers: e.NUM_WORKERS,
    capacity: e.CAPACITY,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    roomCheckIntervalMs: e.ROOM_CHECK_INTERVAL_MS,
    roomRefreshIntervalMs: e.ROOM_REFRESH_INTERVAL_MS,
    maxRoomPeers: e.MAX_ROOM_PEERS,
    pingIntervalMs: e.WS_PING_INTERVAL_MS,
    joinTimeoutMs: e.JOIN_TIMEOUT_MS,
    workerLogLevel: e.WORKER_LOG_LEVEL,
    debugEndpoints: e.DEBUG_ENDPOINTS === 'true',
    logLevel: e.LOG_LEVEL,
  };
}
