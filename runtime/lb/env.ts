/**
 * The LB process's environment contract (set by the CDK task definition or the local supervisor),
 * validated once at start. A bad value stops the process with a message naming the variable.
 */
import { z } from 'zod';
import { isAwsRegion } from '../protocol/regions';
import { KeySetError, parseKeySet } from '../protocol/tokens';
import { lbConfig, type LbConfig } from './config';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http:// or https:// URL' });

/** A key set variable: parsed into keys, or an issue that names what is wrong without showing it. */
function keySet(what: string) {
  return z
    .string()
    .min(1, `is required (${what}, JSON)`)
    .transform((text, ctx) => {
      try {
        return parseKeySet(text, what);
      } catch (err) {
        if (!(err instanceof KeySetError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.detail });
        return z.NEVER;
      }
    });
}

const envSchema = z.object({
  REGION: z.string().refine(isAwsRegion, { message: 'must be an AWS region name such as "eu-west-1"' }),
  TABLE_NAME: z.string().min(3).max(255),
  DYNAMODB_ENDPOINT: httpUrl.optional(),
  /** Key sets as JSON documents (runtime/protocol/tokens.ts parseKeySet); never echoed. */
  JOIN_TOKEN_KEYS: keySet('the join-token key set'),
  MEDIA_TOKEN_KEYS: keySet('the media-token key set'),
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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Proxies in front of the LB whose X-Forwarded-For is trusted (1 behind an ALB). */
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(5).default(0),
});

const SECRET_VARIABLES = new Set(['JOIN_TOKEN_KEYS', 'MEDIA_TOKEN_KEYS']);

export interface LbEnv {
  readonly config: LbConfig;
  readonly tableName: string;
  readonly dynamoEndpoint: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
}

export function readLbEnv(env: NodeJS.ProcessEnv): LbEnv {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? 'environment');
      // Never echo a secret back into logs.
      const value = SECRET_VARIABLES.has(name) ? '' : ` (got ${JSON.stringify(env[name] ?? null)})`;
      return `  ${name}: ${i.message}${value}`;
    });
    throw new Error(`invalid LB environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    config: lbConfig({
      region: e.REGION,
      publicApiUrl: e.PUBLIC_API_URL,
      joinTokenKeys: e.JOIN_TOKEN_KEYS,
      mediaTokenKeys: e.MEDIA_TOKEN_KEYS,
      corsOrigins: e.CORS_ORIGINS,
      trustProxyHops: e.TRUST_PROXY_HOPS,
    }),
    tableName: e.TABLE_NAME,
    dynamoEndpoint: e.DYNAMODB_ENDPOINT,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
  };
}
