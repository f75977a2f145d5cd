/**
 * The local multi-region stack: per-region DynamoDB emulators with replication, per region one LB
 * service and N media servers as real child processes on the region's loopback address, the Route 53
 * emulator probing every region's /health, and the dashboard + control API on 127.0.0.1.
 *
 * Used by `npm start` (scripts/local.ts), by the chaos script when no stack runs, and by tests (which
 * pass other ports so they can run beside a developer's stack).
 *
 * This module composes the pieces and owns their order: start the emulators, then the regions'
 * processes (layout.ts, processes.ts), the DNS emulator and the control server; undo what started when
 * a later step fails; stop in the same order. Health (health.ts) and the state file (stateFile.ts) are
 * views of what runs.
 */
import * as path from 'node:path';
import { startControlServer, type ControlServer } from './controlServer';
import { demoRoutes } from './demoServer';
import { devTokenSigner, freshKeySets } from './devKeys';
import { startDnsEmulator, type DnsEmulator } from './dnsEmulator';
import { startDynamoEmulator, type DynamoEmulator } from './dynamoEmulator';
import { waitRegionsHealthy } from './health';
import { regionLayout, runningRegions } from './layout';
import { requireLoopbackAddresses } from './loopback';
import { localLogLevel, superviseRegions } from './processes';
import type { ProcessSupervisor } from './ProcessSupervisor';
import { ReplicaStores } from './replicas';
import type { Store } from '../store';
import {
  DEFAULT_STATE_DIR,
  keepStateFile,
  stackStateSource,
  stateFilePath,
  type LocalStackState,
  type StateFileWriter,
} from './stateFile';
import type { LocalStackConfig } from './topology';

/** What `state()` returns, and what `.local/state.json` holds. */
export type { LocalStackState } from './stateFile';

export interface LocalStackOptions {
  readonly config: LocalStackConfig;
  /** Use the first N configured regions. @default all */
  readonly regionCount?: number;
  /** Media servers per region. @default config.local.mediaServersPerRegion */
  readonly mediaPerRegion?: number;
  /** Where `.local/state.json` and the logs go. @default <repo>/.local */
  readonly stateDir?: string;
  /** Progress lines; @default none */
  readonly log?: (line: string) => void;
}

export interface LocalStack {
  readonly state: () => LocalStackState;
  readonly supervisor: ProcessSupervisor;
  readonly dynamo: DynamoEmulator;
  readonly dns: DnsEmulator;
  /** A store on one region's replica (as that region's processes see the table). */
  readonly storeFor: (region: string) => Store;
  readonly waitHealthy: (timeoutMs: number) => Promise<void>;
  readonly devToken: (room: string, sub?: string) => Promise<string>;
  readonly stop: () => Promise<void>;
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const { config } = opts;
  const local = config.local;
  const log = opts.log ?? (() => undefined);
  const regions = runningRegions(local, opts.regionCount);
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const keys = freshKeySets();
  await requireLoopbackAddresses(regions.map((r) => r.address));

  log(
    `starting DynamoDB emulators (${regions.length} regions, replication lag ${local.replicationLagMs} ms)`,
  );
  const dynamo = await startDynamoEmulator({
    regions: regions.map((r) => ({ name: r.name, address: r.address, port: local.dynamoPort })),
    tableName: config.tableName,
    lagMs: local.replicationLagMs,
  });
  const layout = regionLayout({
    regions,
    lbPort: local.lbPort,
    domain: local.domain,
    backupDomain: local.backupDomain,
    mediaPortBase: local.mediaPortBase,
    mediaPerRegion: opts.mediaPerRegion ?? local.mediaServersPerRegion,
    dynamoEndpoints: dynamo.endpoints,
  });
  const controlOrigin = `http://${local.dnsAddress}:${local.dashboardPort}`;
  const supervisor = superviseRegions({
    regions: layout,
    settings: {
      tableName: config.tableName,
      lbPort: local.lbPort,
      backupDomain: local.backupDomain,
      corsOrigin: controlOrigin,
      logLevel: localLogLevel(process.env.LOG_LEVEL),
      keys,
    },
    logDir: path.join(stateDir, 'logs'),
    log,
  });

  log(
    `starting the Route 53 emulator on ${local.dnsAddress}:${local.dnsPort} (backup zone :${local.backupDnsPort})`,
  );
  // A failed start (say, a port in use) must not leave the children and emulators started so far running.
  const undoStart = async (err: unknown, startedDns?: DnsEmulator): Promise<never> => {
    await supervisor.stopAll();
    await startedDns?.close();
    await dynamo.close();
    throw err;
  };
  const dns = await startDnsEmulator({ config, regions: layout.map((r) => r.name) }).catch((err) =>
    undoStart(err),
  );

  const stores = new ReplicaStores(config.tableName, layout);
  const storeFor = (region: string) => stores.get(region);
  const state = stackStateSource({
    config,
    regions: layout,
    keys,
    controlOrigin,
    processes: () => supervisor.status(),
  });
  const devToken = devTokenSigner(keys.joinTokenKeys);
  const control: ControlServer = await startControlServer({
    host: local.dnsAddress,
    port: local.dashboardPort,
    state,
    supervisor,
    dynamo,
    dns,
    storeFor,
    register: demoRoutes({ state, devToken }),
  }).catch((err) => undoStart(err, dns));

  const stateFile = keepStateFile(stateFilePath(stateDir), state, supervisor);

  let stopped = false;
  return {
    state,
    supervisor,
    dynamo,
    dns,
    storeFor,
    devToken: (room, sub) => devToken(room, sub),
    waitHealthy: (timeoutMs) => waitRegionsHealthy(layout, dns, timeoutMs),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopStack({ stateFile, supervisor, control, dns, dynamo, stores });
    },
  };
}

/**
 * The processes go first, while the emulators they talk to still answer, so they can deregister and
 * exit cleanly; the state file is removed once nothing of the stack runs.
 */
async function stopStack(parts: {
  readonly stateFile: StateFileWriter;
  readonly supervisor: ProcessSupervisor;
  readonly control: ControlServer;
  readonly dns: DnsEmulator;
  readonly dynamo: DynamoEmulator;
  readonly stores: ReplicaStores;
}): Promise<void> {
  parts.stateFile.stopRefreshing();
  await parts.supervisor.stopAll();
  await parts.control.close();
  await parts.dns.close();
  await parts.dynamo.close();
  parts.stores.closeAll();
  parts.stateFile.remove();
}
