/**
 * A reduced local stack for end-to-end tests: two regions, real child processes, the real emulators.
 *
 * Each test file takes its own `slot`, which gives it its own region addresses (127.0.<slot>1.1 and
 * 127.0.<slot>2.1) and its own DNS and dashboard ports on 127.0.0.1, so e2e files can run in parallel
 * with each other and beside a developer's `npm start` (127.0.1-3.1, :5353, :3000). Ports stay below
 * Linux's ephemeral range so an outgoing connection cannot hold one of them by chance.
 *
 * Taken: slot 2 local-stack.test.ts, 4 browser-demo.test.ts, 5 rejoin.test.ts. Slot 3's addresses and
 * DNS ports (127.0.31-33.1, :15353/:15354) belong to chaos.test.ts, which builds its own stack; the
 * emulator unit tests use 127.0.6x and 127.0.7x; test/hardening uses 127.0.110-114.x.
 *
 * `stop()` is safe to call whatever state the start reached; on a failed start the error carries the
 * tail of every process log, since the processes' own output is what explains it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDeploymentConfig, type DeploymentConfig } from '../../lib/config';
import { startLocalStack, type LocalStack, type LocalStackState } from '../../runtime/local/stack';

export const E2E_REGIONS = ['us-east-1', 'eu-west-1'] as const;
export type E2eRegion = (typeof E2E_REGIONS)[number];

const STARTUP_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 15;

export interface E2eStackOptions {
  /** 2..9: picks addresses 127.0.<slot>1.1 / 127.0.<slot>2.1 and ports 15<slot>53/54, 13<slot>00. */
  readonly slot: number;
  readonly mediaPerRegion: number;
  /** DNS emulator health-check interval. @default 1 */
  readonly healthIntervalSeconds?: number;
}

export interface E2eStack {
  readonly stack: LocalStack;
  readonly config: DeploymentConfig;
  readonly state: LocalStackState;
  readonly stateDir: string;
  /** Region address, e.g. 127.0.21.1 for us-east-1 in slot 2. */
  readonly address: (region: E2eRegion) => string;
  /** A source address located in `region` for the DNS emulator (127.0.<n>.100). */
  readonly clientAddress: (region: E2eRegion) => string;
  readonly dnsServer: string;
  readonly dnsPort: number;
  /** Calls the control API (`/api/...`) and returns its JSON; throws with the body on a non-2xx. */
  readonly control: (method: 'GET' | 'POST', apiPath: string) => Promise<unknown>;
  readonly stop: () => Promise<void>;
}

export function e2eConfig(opts: E2eStackOptions): DeploymentConfig {
  if (!Number.isInteger(opts.slot) || opts.slot < 2 || opts.slot > 9)
    throw new Error(`slot must be 2..9, got ${opts.slot}`);
  const s = opts.slot;
  return parseDeploymentConfig(
    {
      regions: [...E2E_REGIONS],
      local: {
        addresses: { 'us-east-1': `127.0.${s}1.1`, 'eu-west-1': `127.0.${s}2.1` },
        lbPort: 18080,
        dynamoPort: 18000,
        mediaPortBase: 19000,
        dnsPort: 15000 + s * 100 + 53,
        backupDnsPort: 15000 + s * 100 + 54,
        dashboardPort: 13000 + s * 100,
        healthCheckIntervalSeconds: opts.healthIntervalSeconds ?? 1,
        replicationLagMs: 100,
        dnsTtlSeconds: 1,
      },
    },
    `e2e slot ${s}`,
  );
}

export async function startE2eStack(opts: E2eStackOptions): Promise<E2eStack> {
  const config = e2eConfig(opts);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `mr-e2e-${opts.slot}-`));
  let stack: LocalStack | undefined;
  try {
    stack = await startLocalStack({
      config,
      regionCount: E2E_REGIONS.length,
      mediaPerRegion: opts.mediaPerRegion,
      stateDir,
    });
    await stack.waitHealthy(STARTUP_TIMEOUT_MS);
  } catch (err) {
    await stack?.stop().catch(() => undefined);
    throw new Error(`${(err as Error).message}\n${logTails(stateDir)}`, { cause: err });
  }
  const started = stack;
  const state = started.state();
  const address = (region: E2eRegion) => config.local.regions.find((r) => r.name === region)!.address;
  let stopped = false;
  return {
    stack: started,
    config,
    state,
    stateDir,
    address,
    clientAddress: (region) => address(region).replace(/\.1$/, '.100'),
    dnsServer: config.local.dnsAddress,
    dnsPort: config.local.dnsPort,
    control: async (method, apiPath) => {
      const res = await fetch(`${state.controlUrl}${apiPath}`, {
        method,
        ...(method === 'POST' && { headers: { 'content-type': 'application/json' }, body: '{}' }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${apiPath} answered ${res.status}: ${text}`);
      return JSON.parse(text) as unknown;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await started.stop();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** The last lines of every process log, for a failure message. */
export function logTails(stateDir: string): string {
  const logDir = path.join(stateDir, 'logs');
  if (!fs.existsSync(logDir)) return '(no process logs)';
  return fs
    .readdirSync(logDir)
    .map((file) => {
      const lines = fs.readFileSync(path.join(logDir, file), 'utf8').trimEnd().split('\n');
      return `--- ${file} ---\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`;
    })
    .join('\n');
}

/** Polls `check` until it returns a truthy value; fails naming `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  const cause = lastError ? ` (last error: ${(lastError as Error).message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}
