/**
 * The local multi-region stack: per-region DynamoDB emulators with replication, per region one LB
 * service and N media servers as real child processes on the region's loopback address, the Route 53
 * emulator probing every region's /health, and the dashboard + control API on 127.0.0.1.
 *
 * Used by `npm start` (scripts/local.ts), by the chaos script when no stack runs, and by tests (which
 * pass other ports so they can run beside a developer's stack).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { LocalStackConfig } from './topology';
import { LOG_LEVELS, type LogLevel } from '../protocol/environment';
import { lbEnvironment } from '../protocol/lbEnvironment';
import { mediaEnvironment } from '../protocol/mediaEnvironment';
import { type KeySetDocument, parseKeySet, signJoinToken } from '../protocol/tokens';
import { Store } from '../store';
import { startControlServer, type ControlServer } from './controlServer';
import { demoRoutes } from './demoServer';
import { startDnsEmulator, type DnsEmulator } from './dnsEmulator';
import { startDynamoEmulator, type DynamoEmulator } from './dynamoEmulator';
import { ProcessSupervisor, type ChildStatus } from './ProcessSupervisor';

const ROOT = path.resolve(__dirname, '..', '..');
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** Each media server gets this many RTC ports (one per WebRtcTransport on the legacy engine). */
const RTC_PORTS_PER_SERVER = 1000;
/** Load units a local media server accepts (transports + consumers). */
const LOCAL_MEDIA_CAPACITY = 400;

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

export interface LocalMediaServer {
  readonly id: string;
  readonly signalingPort: number;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
}

export interface LocalRegion {
  readonly name: string;
  readonly address: string;
  readonly lbUrl: string;
  readonly dynamoEndpoint: string;
  readonly media: readonly LocalMediaServer[];
}

/** What `.local/state.json` holds: everything another tool needs to find and drive the stack. */
export interface LocalStackState {
  readonly pid: number;
  readonly startedAt: number;
  /** Dev key sets of this run, as AWS keeps them in Secrets Manager (runtime/protocol/tokens.ts). */
  readonly joinTokenKeys: KeySetDocument;
  readonly mediaTokenKeys: KeySetDocument;
  readonly tableName: string;
  readonly domain: string;
  readonly controlUrl: string;
  readonly dashboardUrl: string;
  readonly dns: { readonly primary: string; readonly backup: string };
  readonly healthCheck: { readonly intervalSeconds: number; readonly failureThreshold: number };
  readonly dnsTtlSeconds: number;
  readonly lbPort: number;
  readonly regions: readonly LocalRegion[];
  readonly processes: readonly ChildStatus[];
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

/**
 * A store on one region's local replica, for tools that watch or drive the stack from outside every
 * region (dashboard, chaos): one attempt and a short timeout, so a dead region shows as dead at once
 * instead of stalling the view behind SDK retries.
 */
export function localReplicaStore(region: string, tableName: string, endpoint: string): Store {
  return new Store({
    region,
    tableName,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestTimeoutMs: 1_000,
  });
}

export function stateFilePath(stateDir = path.join(ROOT, '.local')): string {
  return path.join(stateDir, 'state.json');
}

/** Linux routes all of 127.0.0.0/8 to lo; other systems need an alias per address. */
export async function checkLoopbackAddresses(addresses: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const address of addresses) {
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(0, address, () => srv.close(() => resolve(true)));
    });
    if (!ok) missing.push(address);
  }
  return missing;
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const { config } = opts;
  const log = opts.log ?? (() => undefined);
  const local = config.local;
  const regions = local.regions.slice(0, opts.regionCount ?? local.regions.length);
  const mediaPerRegion = opts.mediaPerRegion ?? local.mediaServersPerRegion;
  const stateDir = opts.stateDir ?? path.join(ROOT, '.local');
  // Fresh keys per run, one per token kind: media servers get only the media keys, as on AWS.
  const joinTokenKeys: KeySetDocument = { kid: 'local-join', secret: randomBytes(32).toString('hex') };
  const mediaTokenKeys: KeySetDocument = { kid: 'local-media', secret: randomBytes(32).toString('hex') };

  const missing = await checkLoopbackAddresses(regions.map((r) => r.address));
  if (missing.length > 0) {
    throw new Error(
      `cannot bind ${missing.join(', ')}: add loopback aliases first (macOS: ${missing.map((a) => `sudo ifconfig lo0 alias ${a} up`).join('; ')})`,
    );
  }

  log(
    `starting DynamoDB emulators (${regions.length} regions, replication lag ${local.replicationLagMs} ms)`,
  );
  const dynamo = await startDynamoEmulator({
    regions: regions.map((r) => ({ name: r.name, address: r.address, port: local.dynamoPort })),
    tableName: config.tableName,
    lagMs: local.replicationLagMs,
  });

  const layout: LocalRegion[] = regions.map((r) => ({
    name: r.name,
    address: r.address,
    lbUrl: `http://${r.address}:${local.lbPort}`,
    dynamoEndpoint: dynamo.endpoints[r.name]!,
    media: Array.from({ length: mediaPerRegion }, (_, i) => ({
      id: `${r.name}-m${i}`,
      signalingPort: local.mediaPortBase + i,
      rtcMinPort: local.mediaPortBase + RTC_PORTS_PER_SERVER * (i + 1),
      rtcMaxPort: local.mediaPortBase + RTC_PORTS_PER_SERVER * (i + 2) - 1,
    })),
  }));

  const supervisor = new ProcessSupervisor(path.join(stateDir, 'logs'));
  supervisor.on('restart', (s, delayMs) =>
    log(
      `${s.name} exited (${s.lastExit?.signal ?? `code ${s.lastExit?.code}`}); restarting in ${delayMs} ms`,
    ),
  );

  // What any process of the stack needs besides its service's contract: the emulator's credentials.
  const processEnv = {
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    // Local runs use Node 20 (the legacy media engine needs it); production images run Node 22.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const logLevel = localLogLevel(process.env.LOG_LEVEL);
  const dashboardOrigin = `http://${local.dnsAddress}:${local.dashboardPort}`;
  for (const region of layout) {
    log(`starting ${region.name}: LB ${region.lbUrl}, ${region.media.length} media server(s)`);
    for (const m of region.media) {
      supervisor.add({
        name: m.id,
        region: region.name,
        role: 'media',
        entry: path.join(ROOT, 'runtime', 'media', 'server.ts'),
        env: {
          ...processEnv,
          ...mediaEnvironment(
            {
              region: region.name,
              tableName: config.tableName,
              dynamoEndpoint: region.dynamoEndpoint,
              listenHost: region.address,
              signalingPort: m.signalingPort,
              rtcMinPort: m.rtcMinPort,
              rtcMaxPort: m.rtcMaxPort,
              numWorkers: 1,
              capacity: LOCAL_MEDIA_CAPACITY,
              drainTimeoutMs: 3_000,
              logLevel,
            },
            {
              serverId: m.id,
              publicIp: region.address,
              privateEndpoint: `ws://${region.address}:${m.signalingPort}`,
              mediaTokenKeys: JSON.stringify(mediaTokenKeys),
            },
          ),
        },
      });
    }
    supervisor.add({
      name: `${region.name}-lb`,
      region: region.name,
      role: 'lb',
      entry: path.join(ROOT, 'runtime', 'lb', 'server.ts'),
      env: {
        ...processEnv,
        ...lbEnvironment({
          region: region.name,
          tableName: config.tableName,
          dynamoEndpoint: region.dynamoEndpoint,
          host: region.address,
          port: local.lbPort,
          publicApiUrl: region.lbUrl,
          corsOrigins: [dashboardOrigin],
          logLevel,
          joinTokenKeys: JSON.stringify(joinTokenKeys),
          mediaTokenKeys: JSON.stringify(mediaTokenKeys),
        }),
      },
    });
  }

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

  const stores = new Map<string, Store>();
  const storeFor = (region: string): Store => {
    const r = layout.find((x) => x.name === region);
    if (!r)
      throw new Error(
        `region "${region}" is not part of this stack (${layout.map((x) => x.name).join(', ')})`,
      );
    let store = stores.get(region);
    if (!store) {
      store = localReplicaStore(region, config.tableName, r.dynamoEndpoint);
      stores.set(region, store);
    }
    return store;
  };

  const startedAt = Date.now();
  const state = (): LocalStackState => ({
    pid: process.pid,
    startedAt,
    joinTokenKeys,
    mediaTokenKeys,
    tableName: config.tableName,
    domain: local.domain,
    controlUrl: dashboardOrigin,
    dashboardUrl: `${dashboardOrigin}/`,
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
    regions: layout,
    processes: supervisor.status(),
  });

  const joinKeys = parseKeySet(joinTokenKeys);
  const devToken = (room: string, sub = 'dev', ttlSeconds = 24 * 3600) =>
    signJoinToken(joinKeys, { sub, room, ttlSeconds });

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

  const stateFile = stateFilePath(stateDir);
  // The state holds the dev keys: readable by this user only, whatever the umask.
  const writeState = () => {
    fs.writeFileSync(stateFile, `${JSON.stringify(state(), null, 2)}\n`, { mode: 0o600 });
    fs.chmodSync(stateFile, 0o600);
  };
  writeState();
  supervisor.on('exit', writeState);
  const stateTimer = setInterval(writeState, 5_000).unref();

  let stopped = false;
  return {
    state,
    supervisor,
    dynamo,
    dns,
    storeFor,
    devToken: (room, sub) => devToken(room, sub),
    waitHealthy: async (timeoutMs) => {
      // Both views must agree: each LB answers /health 200 (fleet registered, replica up) and the DNS
      // emulator has counted enough good probes to route to it.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lbDown = (
          await Promise.all(layout.map(async (r) => ((await probeHealth(r.lbUrl)) ? null : r.name)))
        ).filter(Boolean);
        const dnsDown = dns
          .status()
          .regions.filter((r) => !r.healthy)
          .map((r) => r.region);
        if (lbDown.length === 0 && dnsDown.length === 0) return;
        if (Date.now() > deadline) {
          throw new Error(
            `regions not healthy after ${timeoutMs} ms: LB /health failing in [${lbDown.join(', ')}], DNS unhealthy [${dnsDown.join(', ')}]`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(stateTimer);
      await supervisor.stopAll();
      await control.close();
      await dns.close();
      await dynamo.close();
      for (const s of stores.values()) s.close();
      fs.rmSync(stateFile, { force: true });
    },
  };
}

async function probeHealth(lbUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${lbUrl}/health`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** The stack's processes log at LOG_LEVEL when it names a level, else at info. */
function localLogLevel(value: string | undefined): LogLevel {
  return LOG_LEVELS.find((level) => level === value) ?? 'info';
}
