/**
 * Picks the mediasoup this process runs, in order:
 *   1. `MEDIA_ENGINE=current|legacy` forces one (and fails if it is not usable);
 *   2. current mediasoup (3.27) when Node >= 22 and its worker binary exists;
 *   3. `mediasoup-legacy` (3.8) when its worker binary exists (built by `npm ci` from bundled sources).
 * `MEDIASOUP_WORKER_BIN` overrides the worker binary of whichever engine is chosen.
 * Nothing usable → an error that says how to get a worker, before any room can be created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCurrentWorker, type CurrentModule } from './currentEngine';
import type { EngineWorker, WorkerSettings } from './engineWorker';
import { createLegacyWorker, type LegacyModule } from './legacyEngine';

export type EngineFlavour = 'current' | 'legacy';

export interface MediaEngine {
  readonly flavour: EngineFlavour;
  readonly version: string;
  readonly workerBin: string;
  /** WebRtcServer (one shared port per worker) exists on the current engine only. */
  readonly usesWebRtcServer: boolean;
  /** Ports one worker needs out of the server's RTC range. */
  portsPerWorker(rangeSize: number, numWorkers: number): number;
  createWorker(settings: WorkerSettings): Promise<EngineWorker>;
}

/** Node major version the current mediasoup requires. */
const CURRENT_MIN_NODE_MAJOR = 22;

export class MediaEngineUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaEngineUnavailableError';
  }
}

export interface EngineEnvironment {
  readonly env: NodeJS.ProcessEnv;
  readonly nodeVersion: string;
  /** Resolves a package's entry point; `require.resolve` outside tests. */
  readonly resolve: (name: string) => string | undefined;
}

interface Candidate {
  readonly flavour: EngineFlavour;
  readonly packageName: string;
  readonly packageDir?: string;
  readonly version?: string;
  readonly workerBin?: string;
  /** Why this candidate cannot run here; undefined when it can. */
  readonly unusable?: string;
}

export function loadMediaEngine(environment: EngineEnvironment = defaultEnvironment()): MediaEngine {
  const forced = environment.env.MEDIA_ENGINE;
  if (forced !== undefined && forced !== 'current' && forced !== 'legacy') {
    throw new MediaEngineUnavailableError(
      `MEDIA_ENGINE is "${forced}"; use "current", "legacy" or leave it unset`,
    );
  }
  const candidates = [
    inspect('current', 'mediasoup', environment),
    inspect('legacy', 'mediasoup-legacy', environment),
  ];
  const eligible = candidates.filter((c) => forced === undefined || c.flavour === forced);
  const chosen = eligible.find((c) => c.unusable === undefined);
  if (!chosen) {
    const reasons = eligible
      .map((c) => `  - ${c.packageName}${c.version ? ` ${c.version}` : ''}: ${c.unusable}`)
      .join('\n');
    throw new MediaEngineUnavailableError(
      `no usable mediasoup worker on this machine:\n${reasons}\n` +
        'Run `npm ci` (its postinstall fetches the current prebuilt worker on Node >= 22, or builds mediasoup 3.8 from ' +
        'its bundled sources; see scripts/install-media-worker.ts), or set MEDIASOUP_WORKER_BIN to a mediasoup-worker binary.',
    );
  }
  return chosen.flavour === 'current' ? currentEngine(chosen) : legacyEngine(chosen);
}

function inspect(flavour: EngineFlavour, packageName: string, environment: EngineEnvironment): Candidate {
  const entry = environment.resolve(packageName);
  if (!entry) return { flavour, packageName, unusable: 'not installed' };
  // Entry points: mediasoup/node/lib/index.js (3.27) and mediasoup-legacy/lib/index.js (3.8).
  const packageDir = findPackageDir(entry);
  const version = (
    JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string }
  ).version;
  const base = { flavour, packageName, packageDir, version };
  const nodeMajor = Number(environment.nodeVersion.replace(/^v/, '').split('.')[0]);
  if (flavour === 'current' && nodeMajor < CURRENT_MIN_NODE_MAJOR) {
    return {
      ...base,
      unusable: `needs Node >= ${CURRENT_MIN_NODE_MAJOR}, this is Node ${environment.nodeVersion}`,
    };
  }
  const workerBin =
    environment.env.MEDIASOUP_WORKER_BIN ||
    path.join(packageDir, 'worker', 'out', 'Release', 'mediasoup-worker');
  if (!isExecutable(workerBin)) return { ...base, unusable: `no worker binary at ${workerBin}` };
  return { ...base, workerBin };
}

function findPackageDir(entry: string): string {
  let dir = path.dirname(entry);
  // Bounded by the filesystem root: dirname of the root is the root.
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function currentEngine(candidate: Candidate): MediaEngine {
  const workerBin = candidate.workerBin!;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mediasoup = require(candidate.packageDir!) as CurrentModule;
  return {
    flavour: 'current',
    version: mediasoup.version,
    workerBin,
    usesWebRtcServer: true,
    // Two: the public address's UDP/TCP sockets, and the private address's for the TURN relay.
    portsPerWorker: (rangeSize, numWorkers) => (rangeSize >= 2 * numWorkers ? 2 : 1),
    createWorker: (settings) => createCurrentWorker(mediasoup, workerBin, settings),
  };
}

function legacyEngine(candidate: Candidate): MediaEngine {
  const workerBin = candidate.workerBin!;
  // mediasoup 3.8 reads the binary's path from the environment once, when the module loads.
  process.env.MEDIASOUP_WORKER_BIN = workerBin;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mediasoup = require(candidate.packageDir!) as LegacyModule;
  return {
    flavour: 'legacy',
    version: mediasoup.version,
    workerBin,
    usesWebRtcServer: false,
    // Each transport binds its own port; split the range so workers never contend for one.
    portsPerWorker: (rangeSize, numWorkers) => Math.floor(rangeSize / numWorkers),
    createWorker: (settings) => createLegacyWorker(mediasoup, settings),
  };
}

function defaultEnvironment(): EngineEnvironment {
  return {
    env: process.env,
    nodeVersion: process.versions.node,
    resolve: (name) => {
      try {
        return require.resolve(name);
      } catch {
        return undefined;
      }
    },
  };
}

export function describeEngine(engine: MediaEngine): string {
  return engine.flavour === 'current'
    ? `mediasoup ${engine.version} (current, WebRtcServer per worker)`
    : `mediasoup ${engine.version} (legacy build from bundled sources; local runs and tests only)`;
}
