/**
 * What `npm ci` installs as the media worker is checked (issue #15): a downloaded prebuilt tarball must
 * match its pinned SHA-256 and is handled in a private temporary directory; the worker cache outside
 * the repository is used only while its binary matches the SHA-256 recorded when it was built.
 *
 * The installer runs as npm runs it (its own process), in a scratch project whose `mediasoup-legacy`
 * has no build yet, with `make` replaced by a stand-in that "builds" a fake worker in a moment, so the
 * cache decisions can be watched without a real 5-minute build. The download is exercised against a
 * local HTTP server.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchPrebuiltWorker } from '../../scripts/install-media-worker';

jest.setTimeout(60_000);

const REPO = path.resolve(__dirname, '../..');
const SCRIPT = path.join(REPO, 'scripts', 'install-media-worker.ts');
/** What a worker prints when started without its channel: enough for the installer's "runs here" check. */
const FAKE_WORKER = (tag: string) =>
  `#!/bin/sh\n# ${tag}\necho "mediasoup-worker::run_worker() | error creating the RTC Channel" >&2\nexit 41\n`;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

let scratch: string;

beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'supply-chain-test-'));
});

afterEach(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

// ---- the worker cache, through the installer's own process -------------------------------------------

interface Project {
  readonly root: string;
  readonly cacheDir: string;
  readonly installed: string;
  readonly makeLog: string;
}

/** A project with the installer, a `mediasoup-legacy` that has no worker yet, and a fake `make`. */
function project(): Project {
  const root = path.join(scratch, 'project');
  fs.mkdirSync(path.join(root, 'scripts'), { recursive: true });
  fs.copyFileSync(SCRIPT, path.join(root, 'scripts', 'install-media-worker.ts'));
  const legacy = path.join(root, 'node_modules', 'mediasoup-legacy');
  fs.mkdirSync(path.join(legacy, 'worker'), { recursive: true });
  fs.writeFileSync(
    path.join(legacy, 'package.json'),
    JSON.stringify({ name: 'mediasoup', version: '3.8.4' }),
  );
  const bin = path.join(scratch, 'bin');
  fs.mkdirSync(bin);
  const makeLog = path.join(scratch, 'make.log');
  const builtWorker = path.join(scratch, 'built-worker');
  fs.writeFileSync(builtWorker, FAKE_WORKER('built'));
  // The stand-in build: records that it ran and how private its scratch directory (the first
  // PYTHONPATH entry) was, then leaves a fake worker where the real build does.
  fs.writeFileSync(
    path.join(bin, 'make'),
    [
      '#!/bin/sh',
      'shim="${PYTHONPATH%%:*}"',
      `echo "built shim=$shim mode=$(stat -c %a "$shim")" >> ${JSON.stringify(makeLog)}`,
      'mkdir -p worker/out/Release',
      `cp ${JSON.stringify(builtWorker)} worker/out/Release/mediasoup-worker`,
      'chmod 755 worker/out/Release/mediasoup-worker',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return {
    root,
    cacheDir: path.join(scratch, 'cache', `mediasoup-worker-3.8.4-${os.platform()}-${os.arch()}`),
    installed: path.join(legacy, 'worker', 'out', 'Release', 'mediasoup-worker'),
    makeLog,
  };
}

function runInstaller(p: Project): string {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(p.root, 'scripts', 'install-media-worker.ts')],
    {
      cwd: REPO,
      env: {
        PATH: `${path.join(scratch, 'bin')}:${process.env.PATH}`,
        HOME: process.env.HOME,
        MEDIA_WORKER_CACHE_DIR: path.join(scratch, 'cache'),
      },
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  if (res.status !== 0) throw new Error(`installer exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

/** A fresh `npm ci`: node_modules comes back without the worker the last run installed. */
function freshInstall(p: Project): void {
  fs.rmSync(path.join(path.dirname(p.installed)), { recursive: true, force: true });
}

function builds(p: Project): string[] {
  return fs.existsSync(p.makeLog) ? fs.readFileSync(p.makeLog, 'utf8').trim().split('\n') : [];
}

describe('the worker cache', () => {
  test('a build is cached in a private directory with the SHA-256 of what was built, from a private scratch directory', () => {
    const p = project();
    const out = runInstaller(p);
    expect(out).toContain('engine: mediasoup 3.8.4 (legacy');
    const built = fs.readFileSync(p.installed);
    expect(fs.readFileSync(path.join(p.cacheDir, 'mediasoup-worker'))).toEqual(built);
    expect(fs.readFileSync(path.join(p.cacheDir, 'mediasoup-worker.sha256'), 'utf8')).toBe(
      `${sha256(built)}  mediasoup-worker\n`,
    );
    expect(fs.statSync(p.cacheDir).mode & 0o777).toBe(0o700);
    const [build] = builds(p);
    expect(build).toMatch(/mode=700$/);
    const shim = /shim=(\S+)/.exec(build!)![1]!;
    expect(fs.existsSync(shim)).toBe(false);
  });

  test('a matching cache is used without a build', () => {
    const p = project();
    runInstaller(p);
    freshInstall(p);
    const out = runInstaller(p);
    expect(out).toContain('using the cached mediasoup 3.8.4 worker');
    expect(builds(p)).toHaveLength(1);
    expect(fs.readFileSync(p.installed, 'utf8')).toBe(FAKE_WORKER('built'));
  });

  test('a tampered cached worker is not installed: the installer says so and rebuilds it', () => {
    const p = project();
    runInstaller(p);
    freshInstall(p);
    const cached = path.join(p.cacheDir, 'mediasoup-worker');
    fs.chmodSync(cached, 0o700);
    fs.writeFileSync(cached, FAKE_WORKER('tampered: runs whatever it likes'));
    const out = runInstaller(p);
    expect(out).toMatch(
      /not using the cached worker at .*: its SHA-256 [0-9a-f]{64} does not match the recorded [0-9a-f]{64}; rebuilding it/,
    );
    expect(fs.readFileSync(p.installed, 'utf8')).toBe(FAKE_WORKER('built'));
    expect(builds(p)).toHaveLength(2);
    expect(fs.readFileSync(cached, 'utf8')).toBe(FAKE_WORKER('built'));
  });

  test('a cached worker with no recorded SHA-256 is not trusted either', () => {
    const p = project();
    fs.mkdirSync(p.cacheDir, { recursive: true });
    fs.writeFileSync(path.join(p.cacheDir, 'mediasoup-worker'), FAKE_WORKER('planted'), { mode: 0o755 });
    const out = runInstaller(p);
    expect(out).toContain('no SHA-256 was recorded for it');
    expect(fs.readFileSync(p.installed, 'utf8')).toBe(FAKE_WORKER('built'));
    expect(builds(p)).toHaveLength(1);
  });
});

// ---- the prebuilt download ---------------------------------------------------------------------------

interface TarballServer {
  readonly url: string;
  readonly requests: number;
  /** What the installer's temporary directory looked like while it was downloading. */
  readonly duringDownload: Array<{ name: string; mode: number; isDirectory: boolean }>;
  close(): Promise<void>;
}

async function serveTarball(tarball: Buffer, tmpDir: string): Promise<TarballServer> {
  const state = {
    requests: 0,
    duringDownload: [] as Array<{ name: string; mode: number; isDirectory: boolean }>,
  };
  const server = http.createServer((_req, res) => {
    state.requests++;
    for (const name of fs.readdirSync(tmpDir)) {
      const stat = fs.statSync(path.join(tmpDir, name));
      state.duringDownload.push({ name, mode: stat.mode & 0o777, isDirectory: stat.isDirectory() });
    }
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(tarball);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.118.1', resolve));
  return {
    url: `http://127.0.118.1:${(server.address() as AddressInfo).port}/worker.tgz`,
    get requests() {
      return state.requests;
    },
    duringDownload: state.duringDownload,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('the prebuilt download', () => {
  const TAR_NAME = 'mediasoup-worker-9.9.9-test.tgz';
  let tmpDir: string;
  let tarball: Buffer;
  let server: TarballServer;
  let destBin: string;
  let logged: jest.SpyInstance;

  beforeEach(async () => {
    tmpDir = path.join(scratch, 'tmp');
    fs.mkdirSync(tmpDir);
    const content = path.join(scratch, 'content');
    fs.mkdirSync(content);
    fs.writeFileSync(path.join(content, 'mediasoup-worker'), FAKE_WORKER('prebuilt'), { mode: 0o755 });
    fs.writeFileSync(path.join(content, 'extra'), 'not for us');
    const tgz = path.join(scratch, TAR_NAME);
    spawnSync('tar', ['-czf', tgz, '-C', content, 'mediasoup-worker', 'extra']);
    tarball = fs.readFileSync(tgz);
    server = await serveTarball(tarball, tmpDir);
    destBin = path.join(scratch, 'dest', 'worker', 'out', 'Release', 'mediasoup-worker');
    logged = jest.spyOn(console, 'log').mockImplementation(() => {});
  });

  afterEach(async () => {
    logged.mockRestore();
    await server.close();
  });

  const lines = () => logged.mock.calls.map((args) => String(args[0]));

  test('a tarball matching its pin is unpacked in a private temporary directory, which is removed', async () => {
    const ok = await fetchPrebuiltWorker({
      url: server.url,
      tarName: TAR_NAME,
      destBin,
      pins: { [TAR_NAME]: sha256(tarball) },
      tempParent: tmpDir,
    });
    expect(ok).toBe(true);
    expect(fs.readFileSync(destBin, 'utf8')).toBe(FAKE_WORKER('prebuilt'));
    expect(fs.existsSync(path.join(path.dirname(destBin), 'extra'))).toBe(false);
    expect(server.duringDownload).toEqual([
      { name: expect.stringMatching(/^mediasoup-prebuilt-/), mode: 0o700, isDirectory: true },
    ]);
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  test('a tarball that does not match its pin is refused and nothing is installed or left behind', async () => {
    const ok = await fetchPrebuiltWorker({
      url: server.url,
      tarName: TAR_NAME,
      destBin,
      pins: { [TAR_NAME]: sha256('another tarball') },
      tempParent: tmpDir,
    });
    expect(ok).toBe(false);
    expect(lines()).toContainEqual(
      `[media-worker] refusing ${TAR_NAME}: its SHA-256 is ${sha256(tarball)}, the pin is ${sha256('another tarball')}; ` +
        'the download was altered or the pin is wrong (see PREBUILT_WORKER_SHA256)',
    );
    expect(server.requests).toBe(1);
    expect(fs.existsSync(destBin)).toBe(false);
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  test('a tarball with no pin is not even downloaded', async () => {
    const ok = await fetchPrebuiltWorker({
      url: server.url,
      tarName: TAR_NAME,
      destBin,
      pins: {},
      tempParent: tmpDir,
    });
    expect(ok).toBe(false);
    expect(lines()).toEqual([
      `[media-worker] ${TAR_NAME} has no SHA-256 pinned in PREBUILT_WORKER_SHA256; not downloading it`,
    ]);
    expect(server.requests).toBe(0);
    expect(fs.existsSync(destBin)).toBe(false);
  });
});
