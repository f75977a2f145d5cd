/**
 * The LB process's environment contract: `lbEnvironment` writes it (the CDK task definition, the local
 * stack, the benches), `readLbEnvironment` reads it once at start (runtime/lb/server.ts). The two key
 * sets are secrets: on AWS, ECS injects them from Secrets Manager under LB_SECRET_VARIABLES' names, so
 * they never appear in the plain environment a template or `describe-task-definition` shows.
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

/** Variables ECS injects from Secrets Manager (`secrets`), by the key set they hold. */
export const LB_SECRET_VARIABLES = {
  joinTokenKeys: 'JOIN_TOKEN_KEYS',
  mediaTokenKeys: 'MEDIA_TOKEN_KEYS',
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
  /** Browser origins allowed cross-origin. @default none */
  readonly corsOrigins?: readonly string[];
  /** Proxies whose X-Forwarded-For is trusted: 1 behind an ALB. @default 0 */
  readonly trustProxyHops?: number;
  /** @default 'info' */
  readonly logLevel?: LogLevel;
  /** Key set documents (JSON), when set in the environment itself (local stack, benches, tests). */
  readonly joinTokenKeys?: string;
  readonly mediaTokenKeys?: string;
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
    TRUST_PROXY_HOPS: settings.trustProxyHops,
    LOG_LEVEL: settings.logLevel,
    CORS_ORIGINS: settings.corsOrigins?.length ? settings.corsOrigins.join(',') : undefined,
    [LB_SECRET_VARIABLES.joinTokenKeys]: settings.joinTokenKeys,
    [LB_SECRET_VARIABLES.mediaTokenKeys]: settings.mediaTokenKeys,
  });
}

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http:// or https:// URL' });

const schema = z.object({
  REGION: z.string().refine(isAwsRegion, { message: 'must be an AWS region name such as "eu-west-1"' }),
  TABLE_NAME: z.string().min(3).max(255),
  DYNAMODB_ENDPOINT: httpUrl.optional(),
  [LB_SECRET_VARIABLES.joinTokenKeys]: keySetVariable('the join-token key set'),
  [LB_SECRET_VARIABLES.mediaTokenKeys]: keySetVariable('the media-token key set'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number().int().min(1).max(65535).default(8080),
  PUBLIC_API_URL: httpUrl,
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
});

export interface LbEnvironment {
  readonly region: string;
  readonly tableName: string;
  readonly dynamoEndpoint: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly publicApiUrl: string;
  readonly corsOrigins: readonly string[];
  readonly trustProxyHops: number;
  readonly logLevel: LogLevel;
  readonly joinTokenKeys: KeySet;
  readonly mediaTokenKeys: KeySet;
}

/** Reads and checks the LB's environment; throws EnvironmentError naming every bad variable. */
export function readLbEnvironment(env: Readonly<Record<string, string | undefined>>): LbEnvironment {
  const e = readEnvironment('LB', schema, env, new Set(Object.values(LB_SECRET_VARIABLES)));
  return {
    region: e.REGION,
    tableName: e.TABLE_NAME,
    dynamoEndpoint: e.DYNAMODB_ENDPOINT,
    host: e.HOST,
    port: e.PORT,
    publicApiUrl: e.PUBLIC_API_URL,
    corsOrigins: e.CORS_ORIGINS,
    trustProxyHops: e.TRUST_PROXY_HOPS,
    logLevel: e.LOG_LEVEL,
    joinTokenKeys: e.JOIN_TOKEN_KEYS,
    mediaTokenKeys: e.MEDIA_TOKEN_KEYS,
  };
}
