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
 * Supply chain: what this script runs as the media worker comes from one of three places, each checked.
 *   - The prebuilt tarball (2.) is the only thing it downloads. Its SHA-256 must equal the pin for its
 *     file name in PREBUILT_WORKER_SHA256 before anything is unpacked; an unpinned or mismatching
 *     tarball is refused (3. follows). It is downloaded into a private temporary directory (mkdtemp,
 *     0700) that is removed afterwards, and only its `mediasoup-worker` member is unpacked.
 *   - The legacy sources (3.) are files of the `mediasoup-legacy` npm package, which npm checked against
 *     package-lock.json's sha512 integrity when it installed them; the build downloads nothing.
 *   - The cache (3.) lives outside the repository and outlives clones, so it is checked like a
 *     download: its directory is 0700, the SHA-256 of each binary is recorded next to it when it is
 *     built, and a cached binary without a record or whose hash differs is not used (it is rebuilt).
 *
 * Never fails the install: a machine without a worker can still lint, type-check and synth. The engine
 * module (runtime/media/engine) refuses to start a media server without one and says how to get one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const PREBUILT_FETCH_TIMEOUT_MS = 15_000;
const WORKER_FILE = 'mediasoup-worker';
/** `sha256sum` format, so an operator can check a cache by hand: `sha256sum -c mediasoup-worker.sha256`. */
const CACHE_RECORD_FILE = `${WORKER_FILE}.sha256`;

/**
 * SHA-256 of each prebuilt worker tarball this script may unpack, by its release file name
 * (`mediasoup-worker-<version>-<platform>-<arch>[-kernel<major>].tgz`, as mediasoup names them).
 * A tarball that is not listed is not used. To pin one, on a machine with network access:
 *   curl -fsSL https://github.com/versatica/mediasoup/releases/download/<v>/<file> | sha256sum
 * and check the digest against the release page's (GitHub shows a sha256 per release asset). The
 * machine this was written on could not reach GitHub, so no digest is pinned yet: the prebuilt path is
 * refused and the legacy build is used until one is added here.
 */
export const PREBUILT_WORKER_SHA256: Readonly<Record<string, string>> = {};

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
  return path.join(dir, 'worker', 'out', 'Release', WORKER_FILE);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function sha256OfFile(file: string): string {
  return sha256(fs.readFileSync(file));
}

/** A private scratch directory (mkdtemp makes it 0700; chmod says so even under an odd umask). */
function privateTempDir(prefix: string, parent = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  fs.chmodSync(dir, 0o700);
  return dir;
}

/**
 * Copies `from` to `to` through a temporary name in `to`'s directory and a rename: a reader never sees
 * half a binary, and a binary that a running media server executes is replaced, not overwritten
 * (overwriting it in place fails with ETXTBSY).
 */
function installFile(from: string, to: string, mode: number): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const staging = `${to}.${process.pid}.tmp`;
  try {
    fs.copyFileSync(from, staging);
    fs.chmodSync(staging, mode);
    fs.renameSync(staging, to);
  } finally {
    fs.rmSync(staging, { force: true });
  }
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

/** The prebuilt tarball's release file name on this host, as mediasoup's own installer computes it. */
export function prebuiltTarName(version: string): string {
  const kernel = os.platform() === 'linux' ? `-kernel${os.release().split('.')[0]}` : '';
  return `mediasoup-worker-${version}-${os.platform()}-${os.arch()}${kernel}.tgz`;
}

/**
 * Downloads a prebuilt worker tarball, checks it against its pin, and installs its `mediasoup-worker`
 * at `destBin`. False (with the reason logged) when it is unpinned, unavailable, does not match its
 * pin, or does not run here; nothing is left behind then.
 */
export async function fetchPrebuiltWorker(opts: {
  readonly url: string;
  readonly tarName: string;
  readonly destBin: string;
  /** @default PREBUILT_WORKER_SHA256 */
  readonly pins?: Readonly<Record<string, string>>;
  /** Where the private scratch directory is made. @default os.tmpdir() */
  readonly tempParent?: string;
  readonly timeoutMs?: number;
}): Promise<boolean> {
  const pins = opts.pins ?? PREBUILT_WORKER_SHA256;
  const pinned = Object.prototype.hasOwnProperty.call(pins, opts.tarName) ? pins[opts.tarName] : undefined;
  if (!pinned) {
    log(`${opts.tarName} has no SHA-256 pinned in PREBUILT_WORKER_SHA256; not downloading it`);
    return false;
  }
  log(`fetching the prebuilt worker: ${opts.url}`);
  const scratch = privateTempDir('mediasoup-prebuilt-', opts.tempParent);
  try {
    const res = await fetch(opts.url, {
      signal: AbortSignal.timeout(opts.timeoutMs ?? PREBUILT_FETCH_TIMEOUT_MS),
    });
    if (!res.ok) {
      log(`prebuilt worker not available (${res.status} ${res.statusText})`);
      return false;
    }
    const tarball = Buffer.from(await res.arrayBuffer());
    const actual = sha256(tarball);
    if (actual !== pinned.toLowerCase()) {
      log(
        `refusing ${opts.tarName}: its SHA-256 is ${actual}, the pin is ${pinned}; ` +
          'the download was altered or the pin is wrong (see PREBUILT_WORKER_SHA256)',
      );
      return false;
    }
    const tgz = path.join(scratch, opts.tarName);
    fs.writeFileSync(tgz, tarball, { mode: 0o600 });
    const unpacked = path.join(scratch, 'unpacked');
    fs.mkdirSync(unpacked, { mode: 0o700 });
    // Only the member we run; the tarball's other entries, if any, never reach the disk.
    execFileSync('tar', ['-xzf', tgz, '-C', unpacked, '--no-same-owner', WORKER_FILE], { stdio: 'pipe' });
    const worker = path.join(unpacked, WORKER_FILE);
    if (!fs.lstatSync(worker).isFile()) {
      log(`refusing ${opts.tarName}: its ${WORKER_FILE} is not a regular file`);
      return false;
    }
    fs.chmodSync(worker, 0o755);
    if (!runsHere(worker)) {
      log('the prebuilt worker does not run on this host; not installing it');
      return false;
    }
    installFile(worker, opts.destBin, 0o755);
    log(`installed the prebuilt worker (sha256 of the tarball ${actual}) at ${opts.destBin}`);
    return true;
  } catch (err) {
    log(`could not fetch the prebuilt worker: ${(err as Error).message}`);
    return false;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function fetchCurrentPrebuilt(dir: string): Promise<boolean> {
  const version = packageVersion(dir);
  const tarName = prebuiltTarName(version);
  const base =
    process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL ??
    'https://github.com/versatica/mediasoup/releases/download';
  return fetchPrebuiltWorker({ url: `${base}/${version}/${tarName}`, tarName, destBin: releaseBin(dir) });
}

/** Why the cached binary must not be used, or undefined when it matches the SHA-256 recorded for it. */
export function cacheProblem(cached: string): string | undefined {
  if (!fs.existsSync(cached)) return 'absent';
  const recordFile = path.join(path.dirname(cached), CACHE_RECORD_FILE);
  if (!fs.existsSync(recordFile)) return `no SHA-256 was recorded for it (${CACHE_RECORD_FILE} is missing)`;
  const recorded = /^([0-9a-f]{64})\s/.exec(fs.readFileSync(recordFile, 'utf8'))?.[1];
  if (!recorded) return `${CACHE_RECORD_FILE} does not hold a SHA-256`;
  const actual = sha256OfFile(cached);
  if (actual !== recorded) return `its SHA-256 ${actual} does not match the recorded ${recorded}`;
  return undefined;
}

/** Puts `bin` in the cache with its SHA-256 record; the cache directory is private to this user. */
function storeInCache(bin: string, cached: string): void {
  const dir = path.dirname(cached);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const digest = sha256OfFile(bin);
  installFile(bin, cached, 0o500);
  const record = path.join(dir, CACHE_RECORD_FILE);
  fs.writeFileSync(`${record}.${process.pid}.tmp`, `${digest}  ${WORKER_FILE}\n`, { mode: 0o400 });
  fs.renameSync(`${record}.${process.pid}.tmp`, record);
}

/** Drops a cache entry that failed its check, so the next install cannot pick it up either. */
function discardCache(cached: string): void {
  fs.rmSync(cached, { force: true });
  fs.rmSync(path.join(path.dirname(cached), CACHE_RECORD_FILE), { force: true });
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
  const shimDir = privateTempDir('mediasoup-build-');
  let res: ReturnType<typeof spawnSync>;
  const started = Date.now();
  try {
    writePythonShim(shimDir);
    const header = writeSigstkszHeader(shimDir);
    log(`building the mediasoup ${version} worker from its bundled sources (a few minutes on 2 cores)...`);
    res = spawnSync('make', ['-C', 'worker'], {
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
  } finally {
    fs.rmSync(shimDir, { recursive: true, force: true });
  }
  const bin = releaseBin(dir);
  if (res.status !== 0 || !fs.existsSync(bin)) {
    const tail = (res.stderr?.toString() ?? '').split('\n').slice(-30).join('\n');
    log(`worker build failed (exit ${res.status}):\n${tail}`);
    return false;
  }
  storeInCache(bin, cached);
  // The objects take ~1 GB; only the binary is needed.
  fs.rmSync(path.join(dir, 'worker', 'out', 'Release', 'obj.target'), { recursive: true, force: true });
  log(
    `built in ${Math.round((Date.now() - started) / 1000)} s; cached at ${cached} (sha256 ${sha256OfFile(cached)})`,
  );
  return true;
}

function installLegacy(dir: string): boolean {
  const version = packageVersion(dir);
  const cached = path.join(workerCacheDir(version), WORKER_FILE);
  const bin = releaseBin(dir);
  // A re-run over an installed worker (`npm rebuild`, a postinstall run by hand) keeps it: it was put
  // there by this script in this tree. The cache is brought in line with it.
  if (fs.existsSync(bin) && runsHere(bin)) {
    if (cacheProblem(cached) !== undefined || sha256OfFile(cached) !== sha256OfFile(bin)) {
      storeInCache(bin, cached);
    }
    log(`the mediasoup ${version} worker is already installed at ${path.relative(ROOT, bin)}`);
    return true;
  }
  const problem = cacheProblem(cached);
  if (problem === undefined && runsHere(cached)) {
    installFile(cached, bin, 0o755);
    log(`using the cached mediasoup ${version} worker from ${cached} (sha256 ${sha256OfFile(bin)})`);
    return true;
  }
  if (problem !== undefined && problem !== 'absent') {
    log(`not using the cached worker at ${cached}: ${problem}; rebuilding it`);
    discardCache(cached);
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
