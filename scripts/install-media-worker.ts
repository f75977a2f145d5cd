/**
 * Install step for the mediasoup worker binary (run by `npm ci` as this package's postinstall).
 *
 * Policy, in order:
 *   1. `MEDIASOUP_WORKER_BIN` set: the operator brought a worker; do nothing.
 *   2. Node >= 22 and the current mediasoup is installed: fetch its prebuilt worker (mediasoup's own
 *      install script is denied in allowScripts because, when the download fails, it falls back to a
 *      source build that needs meson from PyPI and cannot work offline).
 *   3. Otherwise build mediasoup 3.8.4's worker (`mediasoup-legacy`) from the sources bundled in its npm
 *      package, with two fixes for current toolchains, and cache the binary outside the repo keyed by
 *      version and platform so the next `npm ci` on this machine takes seconds.
 *
 * Never fails the install: a machine without a worker can still lint, type-check and synth. The engine
 * module (runtime/media/engine) refuses to start a media server without one and says how to get one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const PREBUILT_FETCH_TIMEOUT_MS = 15_000;

export function workerCacheDir(version: string): string {
  const base =
    process.env.MEDIA_WORKER_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'multi-region-webrtc');
  return path.join(base, `mediasoup-worker-${version}-${os.platform()}-${os.arch()}`);
}

function log(msg: string): void {
  console.log(`[media-worker] ${msg}`);
}

function packageDir(name: string): string | undefined {
  const dir = path.join(ROOT, 'node_modules', name);
  return fs.existsSync(path.join(dir, 'package.json')) ? dir : undefined;
}

function packageVersion(dir: string): string {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

function releaseBin(dir: string): string {
  return path.join(dir, 'worker', 'out', 'Release', 'mediasoup-worker');
}

function runsHere(bin: string): boolean {
  // A worker started without its channel fds gets as far as main() and gives up: 3.8 aborts (SIGABRT)
  // after printing "mediasoup-worker::run_worker() | error creating the RTC Channel", newer ones exit 41.
  // Reaching main() is what this checks; a missing library (127), an unusable file (126, ENOEXEC) or a
  // crash before main does not.
  const res = spawnSync(bin, ['--version'], {
    env: { ...process.env, MEDIASOUP_VERSION: 'x' },
    timeout: 5000,
  });
  if (res.error !== undefined || res.status === 126 || res.status === 127) return false;
  return res.signal === null || (res.stderr?.toString() ?? '').includes('mediasoup-worker');
}

async function fetchCurrentPrebuilt(dir: string): Promise<boolean> {
  const version = packageVersion(dir);
  const kernel = os.platform() === 'linux' ? `-kernel${os.release().split('.')[0]}` : '';
  const tarName = `mediasoup-worker-${version}-${os.platform()}-${os.arch()}${kernel}.tgz`;
  const base =
    process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL ??
    'https://github.com/versatica/mediasoup/releases/download';
  const url = `${base}/${version}/${tarName}`;
  log(`fetching the prebuilt worker for mediasoup ${version}: ${url}`);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PREBUILT_FETCH_TIMEOUT_MS) });
    if (!res.ok) {
      log(`prebuilt worker not available (${res.status} ${res.statusText})`);
      return false;
    }
    const outDir = path.dirname(releaseBin(dir));
    fs.mkdirSync(outDir, { recursive: true });
    const tgz = path.join(os.tmpdir(), tarName);
    fs.writeFileSync(tgz, Buffer.from(await res.arrayBuffer()));
    execFileSync('tar', ['-xzf', tgz, '-C', outDir]);
    fs.rmSync(tgz, { force: true });
    if (!runsHere(releaseBin(dir))) {
      log('the prebuilt worker does not run on this host; removing it');
      fs.rmSync(releaseBin(dir), { force: true });
      return false;
    }
    log(`installed the prebuilt worker at ${path.relative(ROOT, releaseBin(dir))}`);
    return true;
  } catch (err) {
    log(`could not fetch the prebuilt worker: ${(err as Error).message}`);
    return false;
  }
}

/**
 * Python 3.10 removed the `collections.MutableSet` style aliases that mediasoup 3.8.4's bundled gyp
 * imports. A sitecustomize on PYTHONPATH restores them for every python process the build starts.
 */
function writePythonShim(dir: string): void {
  fs.writeFileSync(
    path.join(dir, 'sitecustomize.py'),
    [
      'import collections, collections.abc',
      'for _name in collections.abc.__all__:',
      '    if not hasattr(collections, _name):',
      '        setattr(collections, _name, getattr(collections.abc, _name))',
      '',
    ].join('\n'),
  );
}

/**
 * glibc >= 2.34 makes SIGSTKSZ a call to sysconf(), so abseil's `std::max(SIGSTKSZ, 65536)` no longer
 * compiles (long vs int). A forced-include header turns it back into an int constant.
 */
function writeSigstkszHeader(dir: string): string {
  const header = path.join(dir, 'sigstksz_compat.h');
  fs.writeFileSync(
    header,
    ['#include <signal.h>', '#undef SIGSTKSZ', '#define SIGSTKSZ 32768', ''].join('\n'),
  );
  return header;
}

function buildLegacy(dir: string, cached: string): boolean {
  const version = packageVersion(dir);
  const shimDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mediasoup-build-'));
  writePythonShim(shimDir);
  const header = writeSigstkszHeader(shimDir);
  const started = Date.now();
  log(`building the mediasoup ${version} worker from its bundled sources (a few minutes on 2 cores)...`);
  const res = spawnSync('make', ['-C', 'worker'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      PYTHON: 'python3',
      PYTHONPATH: [shimDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      CXXFLAGS: `${process.env.CXXFLAGS ?? ''} -include ${header}`.trim(),
      CORES: String(Math.max(1, os.cpus().length)),
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  fs.rmSync(shimDir, { recursive: true, force: true });
  const bin = releaseBin(dir);
  if (res.status !== 0 || !fs.existsSync(bin)) {
    const tail = (res.stderr?.toString() ?? '').split('\n').slice(-30).join('\n');
    log(`worker build failed (exit ${res.status}):\n${tail}`);
    return false;
  }
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  fs.copyFileSync(bin, cached);
  fs.chmodSync(cached, 0o755);
  // The objects take ~1 GB; only the binary is needed.
  fs.rmSync(path.join(dir, 'worker', 'out', 'Release', 'obj.target'), { recursive: true, force: true });
  log(`built in ${Math.round((Date.now() - started) / 1000)} s; cached at ${cached}`);
  return true;
}

function installLegacy(dir: string): boolean {
  const version = packageVersion(dir);
  const cached = path.join(workerCacheDir(version), 'mediasoup-worker');
  const bin = releaseBin(dir);
  // A re-run over an installed worker (`npm rebuild`, a postinstall run by hand) keeps it: overwriting a
  // binary that a running media server executes fails with ETXTBSY.
  if (fs.existsSync(bin) && runsHere(bin)) {
    if (!fs.existsSync(cached)) {
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      fs.copyFileSync(bin, cached);
      fs.chmodSync(cached, 0o755);
    }
    log(`the mediasoup ${version} worker is already installed at ${path.relative(ROOT, bin)}`);
    return true;
  }
  if (fs.existsSync(cached) && runsHere(cached)) {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.copyFileSync(cached, bin);
    fs.chmodSync(bin, 0o755);
    log(`using the cached mediasoup ${version} worker from ${cached}`);
    return true;
  }
  return buildLegacy(dir, cached) && fs.existsSync(bin);
}

async function main(): Promise<void> {
  if (process.env.MEDIASOUP_WORKER_BIN) {
    log(`MEDIASOUP_WORKER_BIN is set (${process.env.MEDIASOUP_WORKER_BIN}); nothing to install`);
    return;
  }
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  const current = packageDir('mediasoup');
  if (current && nodeMajor >= 22) {
    if (fs.existsSync(releaseBin(current)) || (await fetchCurrentPrebuilt(current))) {
      log(`engine: mediasoup ${packageVersion(current)} (current)`);
      return;
    }
  } else if (current) {
    log(
      `Node ${process.versions.node} cannot run mediasoup ${packageVersion(current)} (needs Node 22); using the legacy engine`,
    );
  }
  const legacy = packageDir('mediasoup-legacy');
  if (!legacy) {
    log('mediasoup-legacy is not installed (optional dependency skipped?); no media worker on this machine');
    return;
  }
  if (installLegacy(legacy)) {
    log(
      `engine: mediasoup ${packageVersion(legacy)} (legacy, built from source; for local runs and tests only)`,
    );
  } else {
    log('no media worker is available: media servers will not start here. See README "Media engine".');
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    log(`unexpected failure: ${(err as Error).stack ?? String(err)}`);
  });
}
