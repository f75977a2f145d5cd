import { parseKeySet, verifyJoinToken } from '../../../runtime/protocol/tokens';
import {
  CANARY_STEPS,
  currentKey,
  runJoinCanary,
  settingsFromEnv,
  signJoinToken,
  type CanaryDeps,
} from '../../../lib/functions/join-canary';

const KEY_SET = JSON.stringify({
  kid: 'k2',
  secret: 'k2-current-secret-of-at-least-32-bytes-x',
  verify: [{ kid: 'k1', secret: 'k1-old-secret-of-at-least-32-bytes-xxxx' }],
});
const SETTINGS = {
  regionApiUrl: 'https://eu-west-1.api.calls.test',
  backupApiUrl: 'https://api-backup.fallback.test',
  roomId: 'canary-eu-west-1',
  subject: 'canary@eu-west-1',
};

interface Seen {
  readonly url: string;
  readonly method: string;
  readonly auth: string | null;
  readonly body: unknown;
}

/** The HTTP side as a table of answers; records what the canary sent. */
function deps(answers: Record<string, { status: number; body?: unknown }>) {
  const seen: Seen[] = [];
  const steps: string[] = [];
  const d: CanaryDeps = {
    readKeySet: async () => KEY_SET,
    fetch: (async (url: string, init?: RequestInit) => {
      seen.push({
        url,
        method: init?.method ?? 'GET',
        auth: new Headers(init?.headers).get('authorization'),
        body: init?.body,
      });
      const answer = answers[url] ?? { status: 599 };
      return new Response(answer.body === undefined ? '' : JSON.stringify(answer.body), {
        status: answer.status,
      });
    }) as typeof fetch,
    executeStep: async (name, fn) => {
      steps.push(name);
      return fn();
    },
    now: () => Date.now(),
  };
  return { d, seen, steps };
}

const JOIN_OK = {
  status: 200,
  body: { signalingUrl: 'wss://eu-west-1.api.calls.test/v1/rooms/canary-eu-west-1/signal' },
};
const ALL_OK = {
  [`${SETTINGS.regionApiUrl}/health`]: { status: 200, body: { status: 'ok' } },
  [`${SETTINGS.regionApiUrl}/v1/rooms/canary-eu-west-1/join`]: JOIN_OK,
  [`${SETTINGS.backupApiUrl}/v1/rooms/canary-eu-west-1/join`]: JOIN_OK,
};

describe('join canary', () => {
  it('signs join tokens the LB accepts, with the current key and its kid', async () => {
    const key = currentKey(KEY_SET);
    expect(key).toEqual({ kid: 'k2', secret: 'k2-current-secret-of-at-least-32-bytes-x' });
    const token = signJoinToken(key, {
      sub: 'canary@eu-west-1',
      room: 'canary-eu-west-1',
      nowMs: Date.now(),
    });
    // The LB's own verifier, with the whole key set the LB is given.
    const claims = await verifyJoinToken(parseKeySet(KEY_SET), token, 'canary-eu-west-1');
    expect(claims).toMatchObject({ sub: 'canary@eu-west-1', room: 'canary-eu-west-1' });
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT', kid: 'k2' });
    // A verify-only key never signs.
    await expect(
      verifyJoinToken(
        parseKeySet({ kid: 'k1', secret: 'k1-old-secret-of-at-least-32-bytes-xxxx' }),
        token,
        'canary-eu-west-1',
      ),
    ).rejects.toThrow();
  });

  it('refuses a key set that is not the documented format', () => {
    expect(() => currentKey('not json')).toThrow(/not JSON/);
    expect(() => currentKey(JSON.stringify({ kid: 'bad kid!', secret: 'x'.repeat(40) }))).toThrow(
      /no valid "kid"/,
    );
    expect(() => currentKey(JSON.stringify({ kid: 'k1', secret: 'short' }))).toThrow(/shorter than 32 bytes/);
  });

  it('checks /health, joins through the region name and through api-backup, as a client would', async () => {
    const { d, seen, steps } = deps(ALL_OK);
    await runJoinCanary(SETTINGS, d);
    expect(steps).toEqual([CANARY_STEPS.health, CANARY_STEPS.joinRegion, CANARY_STEPS.joinBackup]);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET https://eu-west-1.api.calls.test/health',
      'POST https://eu-west-1.api.calls.test/v1/rooms/canary-eu-west-1/join',
      'POST https://api-backup.fallback.test/v1/rooms/canary-eu-west-1/join',
    ]);
    for (const join of seen.filter((s) => s.method === 'POST')) {
      expect(join.body).toBe('{}');
      expect(join.auth).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    }
  });

  it('runs every step even when one fails, and fails the run naming the failed ones', async () => {
    const { d, steps } = deps({
      ...ALL_OK,
      [`${SETTINGS.regionApiUrl}/health`]: { status: 503, body: { status: 'unhealthy' } },
      [`${SETTINGS.backupApiUrl}/v1/rooms/canary-eu-west-1/join`]: { status: 200, body: { region: 'x' } },
    });
    await expect(runJoinCanary(SETTINGS, d)).rejects.toThrow(
      /health-region: GET .*expected 200, got 503[\s\S]*join-backup: POST .*has no signalingUrl/,
    );
    expect(steps).toHaveLength(3);
  });

  it('reads its settings from the environment the stack sets', () => {
    expect(
      settingsFromEnv({
        REGION_API_URL: SETTINGS.regionApiUrl,
        BACKUP_API_URL: SETTINGS.backupApiUrl,
        CANARY_ROOM: SETTINGS.roomId,
        CANARY_SUBJECT: SETTINGS.subject,
      }),
    ).toEqual(SETTINGS);
    expect(() => settingsFromEnv({})).toThrow(/REGION_API_URL is not set/);
  });
});
