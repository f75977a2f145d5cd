/**
 * The LB process's environment contract: `lbEnvironment` writes it (the CDK task definition, the local
 * stack, the benches), `readLbEnvironment` reads it once at start (runtime/lb/server.ts). The two key
 * sets and the TURN secret are secrets: on AWS, ECS injects them from Secrets Manager under
 * LB_SECRET_VARIABLES' names, so they never appear in the plain environment a template or
 * `describe-task-definition` shows.
 *
 * TURN is optional as a whole: without TURN_SECRET the join answers carry no `iceServers` (benches,
 * tests of other parts). With it, every join answer points at the serving region's relay: its host is
 * TURN_HOST_PREFIX plus the host of that region's API URL (`turn.` + `eu-west-1.api.example.com` on
 * AWS, lib/turn-relay.ts turnRelayDomainNames; no prefix locally, where a region's relay listens on the
 * region's address), so the relay name follows the region and the name family the signaling URL is in.
 */
import { z } from 'zod';
import {
  definedVariables,
  keySetVariable,
  logLevelVariable,
  readEnvironment,
  type LogLevel,
} from './environment';
import { isAwsRegion } from './regions';
import type { KeySet } from './tokens';
import {
  TURN_CREDENTIAL_MAX_TTL_S,
  TURN_CREDENTIAL_MIN_TTL_S,
  TURN_CREDENTIAL_TTL_S,
  TURN_PORT,
} from './turnRelayPolicy';

/** TURN over TLS where nothing else is said: the AWS relays' load balancer listener. */
const TURN_TLS_PORT_DEFAULT = 443;

/** Variables ECS injects from Secrets Manager (`secrets`), by the key set they hold. */
export const LB_SECRET_VARIABLES = {
  joinTokenKeys: 'JOIN_TOKEN_KEYS',
  mediaTokenKeys: 'MEDIA_TOKEN_KEYS',
  /** The TURN shared secret, a key set document like the token keys: `secret` signs credentials. */
  turnSecret: 'TURN_SECRET',
} as const;

export interface LbEnvironmentSettings {
  readonly region: string;
  readonly tableName: string;
  /** The local emulator's replica; unset on AWS (the regional endpoint). */
  readonly dynamoEndpoint?: string;
  /** @default '0.0.0.0' */
  readonly host?: string;
  /** @default 8080 */
  readonly port?: number;
  /** This region's public API base, written to the region summary for other regions. */
  readonly publicApiUrl: string;
  /**
   * This region's API base in the backup name family (`<region>.api-backup.<backupDomain>`). With it,
   * a join that came in on a backup name is answered in backup names. @default none: primary only
   */
  readonly backupApiUrl?: string;
  /**
   * The backup zone's domain: a request whose Host is in it is answered in the backup family.
   * Set together with `backupApiUrl`. @default none
   */
  readonly backupDomain?: string;
  /**
   * This region's API base by IP address, answered to requests whose Host is an IP literal. The local
   * stack only: its browser demo cannot resolve the emulated zones, so it talks to addresses and must
   * get addresses back. @default none: an IP-literal Host gets primary names, like any unknown Host
   */
  readonly addressApiUrl?: string;
  /** Browser origins allowed cross-origin. @default none */
  readonly corsOrigins?: readonly string[];
  /** Proxies whose X-Forwarded-For is trusted: 1 behind an ALB. @default 0 */
  readonly trustProxyHops?: number;
  /** @default 'info' */
  readonly logLevel?: LogLevel;
  /** Key set documents (JSON), when set in the environment itself (local stack, benches, tests). */
  readonly joinTokenKeys?: string;
  readonly mediaTokenKeys?: string;
  /** The TURN secret document (JSON), when set in the environment itself (local stack, tests). */
  readonly turnSecret?: string;
  /** Where the serving region's relay answers; set it wherever TURN_SECRET is given. */
  readonly turn?: LbTurnSettings;
}

/** How join answers name the serving region's relay (see the header). */
export interface LbTurnSettings {
  /** Prepended to the serving region's API host: `turn.` on AWS, '' locally. */
  readonly hostPrefix: string;
  /** TURN over UDP and TCP. */
  readonly port: number;
  /** TURN over TLS: 443 on AWS (the relay's load balancer), 5349 locally. */
  readonly tlsPort: number;
  /** Credential lifetime (runtime/lb/turnCredentials.ts bounds it). */
  readonly ttlSeconds: number;
}

/** The LB's environment for `settings`; key sets only when given (AWS injects them as secrets). */
export function lbEnvironment(settings: LbEnvironmentSettings): Record<string, string> {
  return definedVariables({
    REGION: settings.region,
    TABLE_NAME: settings.tableName,
    DYNAMODB_ENDPOINT: settings.dynamoEndpoint,
    HOST: settings.host,
    PORT: settings.port,
    PUBLIC_API_URL: settings.publicApiUrl,
    BACKUP_API_URL: settings.backupApiUrl,
    BACKUP_DOMAIN: settings.backupDomain,
    ADDRESS_API_URL: settings.addressApiUrl,
    TRUST_PROXY_HOPS: settings.trustProxyHops,
    LOG_LEVEL: settings.logLevel,
    CORS_ORIGINS: settings.corsOrigins?.length ? settings.corsOrigins.join(',') : undefined,
    [LB_SECRET_VARIABLES.joinTokenKeys]: settings.joinTokenKeys,
    [LB_SECRET_VARIABLES.mediaTokenKeys]: settings.mediaTokenKeys,
    [LB_SECRET_VARIABLES.turnSecret]: settings.turnSecret,
    TURN_HOST_PREFIX: settings.turn?.hostPrefix,
    TURN_PORT: settings.turn?.port,
    TURN_TLS_PORT: settings.turn?.tlsPort,
    TURN_TTL_SECONDS: settings.turn?.ttlSeconds,
  });
}

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http:// or https:// URL' });

const portVariable = z.coerce.number().int().min(1).max(65535);

const DOMAIN = /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
const schema = z.object({
  REGION: z.string().refine(isAwsRegion, { message: 'must be an AWS region name such as "eu-west-1"' }),
  TABLE_NAME: z.string().min(3).max(255),
  DYNAMODB_ENDPOINT: httpUrl.optional(),
  [LB_SECRET_VARIABLES.joinTokenKeys]: keySetVariable('the join-token key set'),
  [LB_SECRET_VARIABLES.mediaTokenKeys]: keySetVariable('the media-token key set'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number().int().min(1).max(65535).default(8080),
  PUBLIC_API_URL: httpUrl,
  BACKUP_API_URL: httpUrl.optional(),
  BACKUP_DOMAIN: z
    .string()
    .toLowerCase()
    .refine((d) => DOMAIN.test(d), { message: 'must be a domain name such as "example.net"' })
    .optional(),
  ADDRESS_API_URL: httpUrl.optional(),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .pipe(z.array(httpUrl)),
  LOG_LEVEL: logLevelVariable,
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(5).default(0),
  [LB_SECRET_VARIABLES.turnSecret]: keySetVariable('the TURN secret').optional(),
  // A DNS label or labels ending in a dot, or nothing: what goes before the region's API host.
  TURN_HOST_PREFIX: z
    .string()
    .regex(/^([a-z0-9-]{1,63}\.)*$/, 'must be empty or DNS labels ending in "." such as "turn."')
    .default(''),
  TURN_PORT: portVariable.default(TURN_PORT),
  TURN_TLS_PORT: portVariable.default(TURN_TLS_PORT_DEFAULT),
  TURN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(TURN_CREDENTIAL_MIN_TTL_S)
    .max(TURN_CREDENTIAL_MAX_TTL_S)
    .default(TURN_CREDENTIAL_TTL_S),
});

export interface LbEnvironment {
  readonly region: string;
  readonly tableName: string;
  readonly dynamoEndpoint: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly publicApiUrl: string;
  /** Both set or both undefined. */
  readonly backupApiUrl: string | undefined;
  readonly backupDomain: string | undefined;
  readonly addressApiUrl: string | undefined;
  readonly corsOrigins: readonly string[];
  readonly trustProxyHops: number;
  readonly logLevel: LogLevel;
  readonly joinTokenKeys: KeySet;
  readonly mediaTokenKeys: KeySet;
  /** The TURN secret and relay settings; undefined when TURN_SECRET is unset (no relay). */
  readonly turn: (LbTurnSettings & { readonly secret: KeySet }) | undefined;
}

/** Reads and checks the LB's environment; throws EnvironmentError naming every bad variable. */
export function readLbEnvironment(env: Readonly<Record<string, string | undefined>>): LbEnvironment {
  const e = readEnvironment(
    'LB',
    schema.refine((v) => (v.BACKUP_API_URL === undefined) === (v.BACKUP_DOMAIN === undefined), {
      path: ['BACKUP_DOMAIN'],
      message: 'BACKUP_API_URL and BACKUP_DOMAIN are set together (the backup family needs both)',
    }),
    env,
    new Set(Object.values(LB_SECRET_VARIABLES)),
  );
  return {
    region: e.REGION,
    tableName: e.TABLE_NAME,
    dynamoEndpoint: e.DYNAMODB_ENDPOINT,
    host: e.HOST,
    port: e.PORT,
    publicApiUrl: e.PUBLIC_API_URL,
    backupApiUrl: e.BACKUP_API_URL,
    backupDomain: e.BACKUP_DOMAIN,
    addressApiUrl: e.ADDRESS_API_URL,
    corsOrigins: e.CORS_ORIGINS,
    trustProxyHops: e.TRUST_PROXY_HOPS,
    logLevel: e.LOG_LEVEL,
    joinTokenKeys: e.JOIN_TOKEN_KEYS,
    mediaTokenKeys: e.MEDIA_TOKEN_KEYS,
    turn: e.TURN_SECRET && {
      secret: e.TURN_SECRET,
      hostPrefix: e.TURN_HOST_PREFIX,
      port: e.TURN_PORT,
      tlsPort: e.TURN_TLS_PORT,
      ttlSeconds: e.TURN_TTL_SECONDS,
    },
  };
}
