/**
 * The region's join canary (CloudWatch Synthetics, Node.js runtime): every minute, as a client would,
 *
 *   health-region   GET  <region name>/health                   200: this region can serve joins
 *   join-region     POST <region name>/v1/rooms/<room>/join      200 with a signalingUrl
 *   join-backup     POST api-backup.<backupDomain>/v1/rooms/<room>/join   (the second way in)
 *
 * with a join token it signs itself (HS256, the key set's current key, `kid` in the header) from this
 * region's replica of the join-token key set. Each step runs even when an earlier one failed, so the
 * per-step metrics (SuccessPercent by StepName) say which way in is broken; the run fails if any did.
 *
 * Runs as inline canary code (lib/inline-code.ts): node built-ins plus the runtime's `Synthetics`
 * module and AWS SDK, both loaded only inside the canary.
 */
import { createHmac } from 'node:crypto';

export const CANARY_STEPS = {
  health: 'health-region',
  joinRegion: 'join-region',
  joinBackup: 'join-backup',
} as const;

/** Audience of join tokens (runtime/protocol/tokens.ts JOIN_AUDIENCE). */
export const JOIN_AUDIENCE = 'mrwebrtc:join';
/** Long enough for one run (three requests with timeouts), short enough to be useless if it leaked. */
const TOKEN_TTL_S = 300;
const REQUEST_TIMEOUT_MS = 10_000;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_KEY_BYTES = 32;

export interface CanarySettings {
  /** `https://<region>.api.<domain>` */
  readonly regionApiUrl: string;
  /** `https://api-backup.<backupDomain>` */
  readonly backupApiUrl: string;
  /** Room the canary joins; one per region, so canaries of different regions never share a room. */
  readonly roomId: string;
  /** Identity (`sub`) of the canary's join tokens. */
  readonly subject: string;
}

export interface SigningKey {
  readonly kid: string;
  readonly secret: string;
}

export interface CanaryDeps {
  /** The join-token key set's JSON, from this region's replica. */
  readKeySet(): Promise<string>;
  readonly fetch: typeof fetch;
  /** Synthetics' executeStep: records the step's metrics, rethrows its error. */
  executeStep(name: string, fn: () => Promise<void>): Promise<unknown>;
  now(): number;
}

/** The current (signing) key of a key set `{"kid","secret","verify":[...]}`; verify-only keys never sign. */
export function currentKey(keySetJson: string): SigningKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(keySetJson);
  } catch {
    throw new Error(
      'the join-token key set is not JSON; it must be {"kid":"...","secret":"...","verify":[...]}',
    );
  }
  const { kid, secret } = (parsed ?? {}) as { kid?: unknown; secret?: unknown };
  if (typeof kid !== 'string' || !KEY_ID.test(kid)) {
    throw new Error('the join-token key set has no valid "kid" (1-64 of A-Z a-z 0-9 . _ -)');
  }
  if (typeof secret !== 'string' || Buffer.byteLength(secret) < MIN_KEY_BYTES) {
    throw new Error(`the join-token key set's "secret" is missing or shorter than ${MIN_KEY_BYTES} bytes`);
  }
  return { kid, secret };
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** A join token as app backends mint them (runtime/protocol/tokens.ts signJoinToken), with the key's id. */
export function signJoinToken(key: SigningKey, claims: { sub: string; room: string; nowMs: number }): string {
  const iat = Math.floor(claims.nowMs / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }));
  const payload = base64url(
    JSON.stringify({ sub: claims.sub, aud: JOIN_AUDIENCE, room: claims.room, iat, exp: iat + TOKEN_TTL_S }),
  );
  const signature = base64url(createHmac('sha256', key.secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${signature}`;
}

async function expectStatus(res: Response, status: number, what: string): Promise<unknown> {
  const text = await res.text();
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${text.slice(0, 200)}`);
  }
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    throw new Error(`${what}: answered ${status} but not JSON`);
  }
}

async function join(
  deps: CanaryDeps,
  baseUrl: string,
  settings: CanarySettings,
  token: string,
): Promise<void> {
  const url = `${baseUrl}/v1/rooms/${encodeURIComponent(settings.roomId)}/join`;
  const res = await deps.fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = (await expectStatus(res, 200, `POST ${url}`)) as { signalingUrl?: unknown } | undefined;
  if (typeof body?.signalingUrl !== 'string' || body.signalingUrl.length === 0) {
    throw new Error(`POST ${url}: the answer has no signalingUrl`);
  }
}

/** One canary run; throws (failing the run) if any step failed, after every step has run. */
export async function runJoinCanary(settings: CanarySettings, deps: CanaryDeps): Promise<void> {
  const key = currentKey(await deps.readKeySet());
  const token = signJoinToken(key, { sub: settings.subject, room: settings.roomId, nowMs: deps.now() });
  const steps: [string, () => Promise<void>][] = [
    [
      CANARY_STEPS.health,
      async () => {
        const url = `${settings.regionApiUrl}/health`;
        await expectStatus(
          await deps.fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
          200,
          `GET ${url}`,
        );
      },
    ],
    [CANARY_STEPS.joinRegion, () => join(deps, settings.regionApiUrl, settings, token)],
    [CANARY_STEPS.joinBackup, () => join(deps, settings.backupApiUrl, settings, token)],
  ];
  const failed: string[] = [];
  for (const [name, step] of steps) {
    try {
      await deps.executeStep(name, step);
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (failed.length > 0) throw new Error(`join canary failed:\n${failed.join('\n')}`);
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): CanarySettings {
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`canary environment ${name} is not set`);
    return value;
  };
  return {
    regionApiUrl: need('REGION_API_URL'),
    backupApiUrl: need('BACKUP_API_URL'),
    roomId: need('CANARY_ROOM'),
    subject: need('CANARY_SUBJECT'),
  };
}

interface SecretsManagerModule {
  SecretsManagerClient: new (config: object) => {
    send(command: unknown): Promise<{ SecretString?: string }>;
  };
  GetSecretValueCommand: new (input: { SecretId: string }) => unknown;
}
interface SyntheticsModule {
  executeStep(name: string, fn: () => Promise<void>): Promise<unknown>;
}

export async function handler(): Promise<void> {
  // Both exist only inside the Synthetics runtime.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const synthetics = require('Synthetics') as SyntheticsModule;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sm = require('@aws-sdk/client-secrets-manager') as SecretsManagerModule;
  const secretArn = process.env.JOIN_TOKEN_KEYS_SECRET_ARN;
  if (!secretArn) throw new Error('canary environment JOIN_TOKEN_KEYS_SECRET_ARN is not set');
  const client = new sm.SecretsManagerClient({});
  await runJoinCanary(settingsFromEnv(process.env), {
    async readKeySet() {
      const out = await client.send(new sm.GetSecretValueCommand({ SecretId: secretArn }));
      if (!out.SecretString) throw new Error('the join-token key set has no string value');
      return out.SecretString;
    },
    fetch,
    executeStep: (name, fn) => synthetics.executeStep(name, fn),
    now: Date.now,
  });
}
