/**
 * The child processes of each region, as the supervisor runs them: the region's TURN relay (coturn,
 * prepared by runtime/local/TurnRelay.ts), its media servers, then its LB, every one on the region's
 * loopback address. Each gets its service's environment contract
 * (runtime/protocol's mediaEnvironment and lbEnvironment, the same writers CDK uses) plus the emulator's
 * credentials, so a local process starts exactly as its AWS twin does, only pointed at the emulators.
 */
import * as path from 'node:path';
import { LOG_LEVELS, type LogLevel } from '../protocol/environment';
import { lbEnvironment } from '../protocol/lbEnvironment';
import { mediaEnvironment } from '../protocol/mediaEnvironment';
import type { LocalKeySets } from './devKeys';
import type { PreparedTurnRelay } from './TurnRelay';
import type { LocalMediaServer, LocalRegion } from './layout';
import { ProcessSupervisor, type ChildSpec } from './ProcessSupervisor';
import { LOCAL_CREDENTIALS } from './replicas';

const ROOT = path.resolve(__dirname, '..', '..');
/** Load units a local media server accepts (transports + consumers). */
const LOCAL_MEDIA_CAPACITY = 400;

/** What every process of the stack needs besides its service's contract: the emulator's credentials. */
const PROCESS_ENV = {
  AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  // Local runs use Node 20 (the legacy media engine needs it); production images run Node 22.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/** What a region's processes share besides their region. */
export interface RegionProcessSettings {
  readonly tableName: string;
  readonly lbPort: number;
  /** The backup zone: requests whose Host is under it are answered in backup names. */
  readonly backupDomain: string;
  /** The dashboard's origin: the browser demo calls the LBs from it. */
  readonly corsOrigin: string;
  readonly logLevel: LogLevel;
  readonly keys: LocalKeySets;
  /** Lifetime of the TURN credentials the LBs hand out. */
  readonly turnCredentialTtlSeconds: number;
}

export interface SuperviseRegionsOptions {
  readonly regions: readonly LocalRegion[];
  readonly settings: RegionProcessSettings;
  /** Each region's relay, prepared (files written) but not started; by region name. */
  readonly relays: Readonly<Record<string, PreparedTurnRelay>>;
  /** Where the supervisor writes each child's log. */
  readonly logDir: string;
  readonly log: (line: string) => void;
}

/** Starts every region's processes under one supervisor, which restarts them when they crash. */
export function superviseRegions(opts: SuperviseRegionsOptions): ProcessSupervisor {
  const { log } = opts;
  const supervisor = new ProcessSupervisor(opts.logDir);
  supervisor.on('restart', (s, delayMs) =>
    log(
      `${s.name} exited (${s.lastExit?.signal ?? `code ${s.lastExit?.code}`}); restarting in ${delayMs} ms`,
    ),
  );
  for (const region of opts.regions) {
    log(
      `starting ${region.name}: LB ${region.lbUrl}, ${region.media.length} media server(s), TURN relay ` +
        `${region.turn.host}:${region.turn.port} (TLS :${region.turn.tlsPort})`,
    );
    for (const spec of regionProcesses(region, opts.settings, opts.relays[region.name])) supervisor.add(spec);
  }
  return supervisor;
}

/** One region's children: its TURN relay (when given), its media servers, then its LB. */
export function regionProcesses(
  region: LocalRegion,
  settings: RegionProcessSettings,
  relay?: PreparedTurnRelay,
): ChildSpec[] {
  return [
    ...(relay ? [turnProcess(region, relay)] : []),
    ...region.media.map((m) => mediaProcess(region, m, settings)),
    lbProcess(region, settings, relay !== undefined),
  ];
}

/** coturn itself is the child, so a chaos SIGKILL or SIGSTOP of the region reaches the relay directly. */
function turnProcess(region: LocalRegion, relay: PreparedTurnRelay): ChildSpec {
  return {
    name: `${region.name}-turn`,
    region: region.name,
    role: 'turn',
    entry: relay.command,
    env: {},
  };
}

function mediaProcess(
  region: LocalRegion,
  server: LocalMediaServer,
  settings: RegionProcessSettings,
): ChildSpec {
  return {
    name: server.id,
    region: region.name,
    role: 'media',
    entry: path.join(ROOT, 'runtime', 'media', 'server.ts'),
    env: {
      ...PROCESS_ENV,
      ...mediaEnvironment(
        {
          region: region.name,
          tableName: settings.tableName,
          dynamoEndpoint: region.dynamoEndpoint,
          listenHost: region.address,
          signalingPort: server.signalingPort,
          rtcMinPort: server.rtcMinPort,
          rtcMaxPort: server.rtcMaxPort,
          numWorkers: 1,
          capacity: LOCAL_MEDIA_CAPACITY,
          drainTimeoutMs: 3_000,
          logLevel: settings.logLevel,
        },
        {
          serverId: server.id,
          publicIp: region.address,
          privateEndpoint: `ws://${region.address}:${server.signalingPort}`,
          mediaTokenKeys: JSON.stringify(settings.keys.mediaTokenKeys),
        },
      ),
    },
  };
}

function lbProcess(region: LocalRegion, settings: RegionProcessSettings, withTurn: boolean): ChildSpec {
  return {
    name: `${region.name}-lb`,
    region: region.name,
    role: 'lb',
    entry: path.join(ROOT, 'runtime', 'lb', 'server.ts'),
    env: {
      ...PROCESS_ENV,
      ...lbEnvironment({
        region: region.name,
        tableName: settings.tableName,
        dynamoEndpoint: region.dynamoEndpoint,
        host: region.address,
        port: settings.lbPort,
        // Names in both families, as on AWS; by address only for IP-literal Hosts (the browser demo).
        publicApiUrl: region.apiUrl,
        backupApiUrl: region.backupApiUrl,
        backupDomain: settings.backupDomain,
        addressApiUrl: region.lbUrl,
        corsOrigins: [settings.corsOrigin],
        logLevel: settings.logLevel,
        joinTokenKeys: JSON.stringify(settings.keys.joinTokenKeys),
        mediaTokenKeys: JSON.stringify(settings.keys.mediaTokenKeys),
        // Relays listen on their region's address, which is the host of the region's API URL: no prefix.
        ...(withTurn && {
          turnSecret: JSON.stringify(settings.keys.turnSecret),
          turn: {
            hostPrefix: '',
            port: region.turn.port,
            tlsPort: region.turn.tlsPort,
            ttlSeconds: settings.turnCredentialTtlSeconds,
          },
        }),
      }),
    },
  };
}

/** The stack's processes log at LOG_LEVEL when it names a level, else at info. */
export function localLogLevel(value: string | undefined): LogLevel {
  return LOG_LEVELS.find((level) => level === value) ?? 'info';
}
