/**
 * `.local/state.json`: what another tool (chaos, the token and client-config scripts, a second
 * terminal) needs to find and drive the running stack: addresses, ports, pids, the dev key sets.
 *
 * The file holds the dev keys, so it is this user's only whatever the umask. It is rewritten whenever a
 * child exits and every few seconds besides, so its pids stay current across restarts, and removed when
 * the stack stops: a file left behind would point tools at a stack that no longer runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KeySetDocument } from '../protocol/tokens';
import type { LocalKeySets } from './devKeys';
import type { LocalRegion } from './layout';
import type { ChildStatus, ProcessSupervisor } from './ProcessSupervisor';
import type { LocalStackConfig } from './topology';

const ROOT = path.resolve(__dirname, '..', '..');
/** Where the state file and the process logs go unless the caller says otherwise. */
export const DEFAULT_STATE_DIR = path.join(ROOT, '.local');
const REFRESH_INTERVAL_MS = 5_000;

/** What `.local/state.json` holds: everything another tool needs to find and drive the stack. */
export interface LocalStackState {
  readonly pid: number;
  readonly startedAt: number;
  /** Dev key sets of this run, as AWS keeps them in Secrets Manager (runtime/protocol/tokens.ts). */
  readonly joinTokenKeys: KeySetDocument;
  readonly mediaTokenKeys: KeySetDocument;
  /** The TURN relays' shared secret of this run (tools can mint or forge credentials to test a relay). */
  readonly turnSecret: KeySetDocument;
  readonly tableName: string;
  /** Primary zone (`api.<domain>`, `<region>.api.<domain>`). */
  readonly domain: string;
  /** Backup zone (`api-backup.<backupDomain>`, `<region>.api-backup.<backupDomain>`). */
  readonly backupDomain: string;
  readonly controlUrl: string;
  readonly dashboardUrl: string;
  readonly dns: { readonly primary: string; readonly backup: string };
  readonly healthCheck: { readonly intervalSeconds: number; readonly failureThreshold: number };
  readonly dnsTtlSeconds: number;
  readonly lbPort: number;
  readonly regions: readonly LocalRegion[];
  readonly processes: readonly ChildStatus[];
}

export interface StackStateInput {
  readonly config: LocalStackConfig;
  readonly regions: readonly LocalRegion[];
  readonly keys: LocalKeySets;
  /** Origin of the dashboard and control API. */
  readonly controlOrigin: string;
  /** The children as they are now (pids change on restarts). */
  readonly processes: () => readonly ChildStatus[];
}

export function stateFilePath(stateDir = DEFAULT_STATE_DIR): string {
  return path.join(stateDir, 'state.json');
}

/** The stack's state as of each call; `startedAt` is fixed when the source is made. */
export function stackStateSource(input: StackStateInput): () => LocalStackState {
  const { config, keys, controlOrigin } = input;
  const local = config.local;
  const startedAt = Date.now();
  return () => ({
    pid: process.pid,
    startedAt,
    joinTokenKeys: keys.joinTokenKeys,
    mediaTokenKeys: keys.mediaTokenKeys,
    turnSecret: keys.turnSecret,
    tableName: config.tableName,
    domain: local.domain,
    backupDomain: local.backupDomain,
    controlUrl: controlOrigin,
    dashboardUrl: `${controlOrigin}/`,
    dns: {
      primary: `${local.dnsAddress}:${local.dnsPort}`,
      backup: `${local.dnsAddress}:${local.backupDnsPort}`,
    },
    healthCheck: {
      intervalSeconds: local.healthCheckIntervalSeconds,
      failureThreshold: config.healthCheck.failureThreshold,
    },
    dnsTtlSeconds: local.dnsTtlSeconds,
    lbPort: local.lbPort,
    regions: input.regions,
    processes: input.processes(),
  });
}

export interface StateFileWriter {
  /** Ends the periodic rewrite; child exits still rewrite the file until `remove`. */
  stopRefreshing(): void;
  remove(): void;
}

/** Writes the state file now, on every child exit and every REFRESH_INTERVAL_MS. */
export function keepStateFile(
  file: string,
  state: () => LocalStackState,
  supervisor: ProcessSupervisor,
): StateFileWriter {
  const write = () => {
    fs.writeFileSync(file, `${JSON.stringify(state(), null, 2)}\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
  };
  write();
  supervisor.on('exit', write);
  const timer = setInterval(write, REFRESH_INTERVAL_MS).unref();
  return {
    stopRefreshing: () => clearInterval(timer),
    remove: () => fs.rmSync(file, { force: true }),
  };
}
