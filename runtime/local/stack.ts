/**
 * The local multi-region stack: per-region DynamoDB emulators with replication, per region one LB
 * service, N media servers and a TURN relay (Debian's coturn) as real child processes on the region's
 * loopback address, the Route 53 emulator probing every region's /health, and the dashboard + control
 * API on 127.0.0.1.
 *
 * Used by `npm start` (scripts/local.ts), by the chaos script when no stack runs, and by tests (which
 * pass other ports so they can run beside a developer's stack).
 *
 * This module composes the pieces and owns their order: start the emulators, then the regions'
 * processes (layout.ts, processes.ts), the DNS emulator and the control server; undo what started when
 * a later step fails; stop in the same order. Health (health.ts) and the state file (stateFile.ts) are
 * views of what runs.
 */
import * as fs from 'node:fs';
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
import { prepareTurnRelay, waitTurnRelayReady, type PreparedTurnRelay } from './TurnRelay';
import type { LocalRegion } from './layout';

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
    turnPort: local.turnPort,
    turnTlsPort: local.turnTlsPort,
    dynamoEndpoints: dynamo.endpoints,
  });
  const logDir = path.join(stateDir, 'logs');
  const relays = await prepareRelays(config, layout, keys.turnSecret.secret, stateDir).catch(
    async (err: unknown) => {
      await dynamo.close();
      throw err;
    },
  );
  const logOffsets = Object.fromEntries(
    layout.map((r) => [r.name, fileSize(path.join(logDir, `${r.name}-turn.log`))]),
  );
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
      turnCredentialTtlSeconds: config.turn.credentialTtlSeconds,
    },
    relays,
    logDir,
    log,
  });

  log(
    `starting the Route 53 emulator on ${local.dnsAddress}:${local.dnsPort} (backup zone :${local.backupDnsPort})`,
  );
  // A failed start (say, a port in use) must not leave the children and emulators started so far running.
  const undoStart = async (err: unknown, startedDns?: DnsEmulator): Promise<never> => {
    await supervisor.stopAll();
    for (const relay of Object.values(relays)) relay.removeSecrets();
    await startedDns?.close();
    await dynamo.close();
    throw err;
  };
  // The relays answer before anything hands out their credentials' first join.
  await Promise.all(
    layout.map((r) =>
      waitTurnRelayReady(relays[r.name]!, {
        log: path.join(logDir, `${r.name}-turn.log`),
        logOffset: logOffsets[r.name],
        gone: () => {
          const child = supervisor.status().find((c) => c.name === `${r.name}-turn`);
          return child && child.state !== 'running' ? 'exited during start' : undefined;
        },
      }),
    ),
  ).catch((err) => undoStart(err));
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
      await stopStack({ stateFile, supervisor, control, dns, dynamo, stores, relays });
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
  readonly relays: Readonly<Record<string, PreparedTurnRelay>>;
}): Promise<void> {
  parts.stateFile.stopRefreshing();
  await parts.supervisor.stopAll();
  for (const relay of Object.values(parts.relays)) relay.removeSecrets();
  await parts.control.close();
  await parts.dns.close();
  await parts.dynamo.close();
  parts.stores.closeAll();
  parts.stateFile.remove();
}

/**
 * Each region's relay: coturn on the region's address, relaying only to that address (the region's media
 * servers; runtime/local/TurnRelay.ts says why that is enough locally), with this run's secret.
 */
async function prepareRelays(
  config: LocalStackConfig,
  layout: readonly LocalRegion[],
  secret: string,
  stateDir: string,
): Promise<Record<string, PreparedTurnRelay>> {
  const relays: Record<string, PreparedTurnRelay> = {};
  for (const region of layout) {
    relays[region.name] = await prepareTurnRelay({
      region: region.name,
      address: region.address,
      port: region.turn.port,
      tlsPort: region.turn.tlsPort,
      relayPortMin: config.local.turnRelayPortMin,
      relayPortMax: config.local.turnRelayPortMax,
      realm: `turn.${region.name}.${config.local.domain}`,
      secrets: [secret],
      allowedPeers: [region.address],
      stateDir: path.join(stateDir, 'turn', region.name),
    }).catch((err: unknown) => {
      for (const prepared of Object.values(relays)) prepared.removeSecrets();
      throw err;
    });
  }
  return relays;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
