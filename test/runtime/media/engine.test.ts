/**
 * The engine module: which mediasoup it picks (fake package trees for each situation), and the real
 * one on this machine creating a worker, a router and a WebRTC transport on the announced address.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOM_MEDIA_CODECS } from '../../../runtime/media/codecs';
import {
  MediaEngineUnavailableError,
  describeEngine,
  loadMediaEngine,
  type EngineEnvironment,
} from '../../../runtime/media/engine';

describe('engine choice', () => {
  let root: string;
  const savedWorkerBin = process.env.MEDIASOUP_WORKER_BIN;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-test-'));
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
    // The legacy loader exports the chosen binary for mediasoup 3.8, which reads it from the environment.
    if (savedWorkerBin === undefined) delete process.env.MEDIASOUP_WORKER_BIN;
    else process.env.MEDIASOUP_WORKER_BIN = savedWorkerBin;
  });

  /** A package that looks like mediasoup: package.json, an entry point and optionally a worker binary. */
  function fakePackage(name: string, version: string, entry: string, withWorker: boolean): string {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, path.dirname(entry)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version, main: entry }));
    fs.writeFileSync(
      path.join(dir, entry),
      `module.exports = { version: ${JSON.stringify(version)}, createWorker() {} };`,
    );
    if (withWorker) {
      const bin = path.join(dir, 'worker', 'out', 'Release', 'mediasoup-worker');
      fs.mkdirSync(path.dirname(bin), { recursive: true });
      fs.writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    }
    return path.join(dir, entry);
  }

  function environment(opts: {
    node: string;
    current?: boolean | 'no-worker';
    legacy?: boolean | 'no-worker';
    env?: NodeJS.ProcessEnv;
  }): EngineEnvironment {
    const entries: Record<string, string> = {};
    if (opts.current)
      entries.mediasoup = fakePackage('mediasoup', '3.27.1', 'node/lib/index.js', opts.current === true);
    if (opts.legacy)
      entries['mediasoup-legacy'] = fakePackage(
        'mediasoup-legacy',
        '3.8.4',
        'lib/index.js',
        opts.legacy === true,
      );
    return { env: opts.env ?? {}, nodeVersion: opts.node, resolve: (name) => entries[name] };
  }

  test('Node 20 runs the legacy engine even when the current one is installed', () => {
    const engine = loadMediaEngine(environment({ node: '20.20.2', current: true, legacy: true }));
    expect(engine).toMatchObject({ flavour: 'legacy', version: '3.8.4', usesWebRtcServer: false });
    expect(engine.workerBin).toBe(
      path.join(root, 'mediasoup-legacy', 'worker', 'out', 'Release', 'mediasoup-worker'),
    );
    expect(describeEngine(engine)).toMatch(/^mediasoup 3\.8\.4 \(legacy/);
  });

  test('Node 22 with a current worker runs the current engine, with a WebRtcServer per worker', () => {
    const engine = loadMediaEngine(environment({ node: 'v22.12.0', current: true, legacy: true }));
    expect(engine).toMatchObject({ flavour: 'current', version: '3.27.1', usesWebRtcServer: true });
    // Two ports per worker: the public address's sockets, and the private address's (the TURN relay's
    // way in); one when the range has no room for that.
    expect(engine.portsPerWorker(100, 4)).toBe(2);
    expect(engine.portsPerWorker(4, 4)).toBe(1);
  });

  test('Node 22 without a current worker falls back to the legacy build', () => {
    const engine = loadMediaEngine(environment({ node: '22.12.0', current: 'no-worker', legacy: true }));
    expect(engine.flavour).toBe('legacy');
    expect(engine.portsPerWorker(100, 4)).toBe(25);
  });

  test('MEDIASOUP_WORKER_BIN supplies the binary', () => {
    const bin = path.join(root, 'custom-worker');
    fs.writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    const engine = loadMediaEngine(
      environment({ node: '20.1.0', legacy: 'no-worker', env: { MEDIASOUP_WORKER_BIN: bin } }),
    );
    expect(engine.workerBin).toBe(bin);
  });

  test('no usable worker fails with the reasons and how to get one', () => {
    const load = () => loadMediaEngine(environment({ node: '20.20.2', current: true, legacy: 'no-worker' }));
    expect(load).toThrow(MediaEngineUnavailableError);
    expect(load).toThrow(/mediasoup 3\.27\.1: needs Node >= 22, this is Node 20\.20\.2/);
    expect(load).toThrow(/mediasoup-legacy 3\.8\.4: no worker binary at .*mediasoup-worker/);
    expect(load).toThrow(/npm ci/);
    expect(load).toThrow(/MEDIASOUP_WORKER_BIN/);
  });

  test('nothing installed says so', () => {
    expect(() => loadMediaEngine(environment({ node: '22.0.0' }))).toThrow(
      /mediasoup: not installed[\s\S]*mediasoup-legacy: not installed/,
    );
  });

  test('MEDIA_ENGINE forces one engine, and names the problem when it cannot run', () => {
    expect(
      loadMediaEngine(
        environment({ node: '22.1.0', current: true, legacy: true, env: { MEDIA_ENGINE: 'legacy' } }),
      ).flavour,
    ).toBe('legacy');
    expect(() =>
      loadMediaEngine(
        environment({ node: '20.1.0', current: true, legacy: true, env: { MEDIA_ENGINE: 'current' } }),
      ),
    ).toThrow(/needs Node >= 22/);
    expect(() =>
      loadMediaEngine(environment({ node: '22.1.0', legacy: true, env: { MEDIA_ENGINE: 'fastest' } })),
    ).toThrow('MEDIA_ENGINE is "fastest"; use "current", "legacy" or leave it unset');
  });
});

describe('the engine installed here', () => {
  test('creates a worker, a router and a WebRTC transport that announces the public address', async () => {
    const engine = loadMediaEngine();
    if (Number(process.versions.node.split('.')[0]) < 22) expect(engine.flavour).toBe('legacy');
    const worker = await engine.createWorker({
      index: 0,
      logLevel: 'warn',
      rtcMinPort: 21_200,
      rtcMaxPort: 21_209,
      listenIp: '127.0.0.1',
      announcedIp: '127.0.0.42',
    });
    try {
      const router = await worker.createRouter(ROOM_MEDIA_CODECS);
      const mimeTypes = (router.rtpCapabilities as { codecs: Array<{ mimeType: string }> }).codecs.map(
        (c) => c.mimeType,
      );
      expect(mimeTypes).toEqual(expect.arrayContaining(['audio/opus', 'video/VP8', 'video/H264']));
      const transport = await worker.createWebRtcTransport(router, {
        initialAvailableOutgoingBitrate: 1_000_000,
      });
      const candidates = transport.iceCandidates as Array<{
        ip?: string;
        address?: string;
        port: number;
        protocol: string;
      }>;
      expect(candidates.map((c) => c.protocol).sort()).toEqual(['tcp', 'udp']);
      for (const candidate of candidates) {
        expect(candidate.ip ?? candidate.address).toBe('127.0.0.42');
        expect(candidate.port).toBeGreaterThanOrEqual(21_200);
        expect(candidate.port).toBeLessThanOrEqual(21_209);
      }
      expect(await worker.cpuTimeMs()).toBeGreaterThanOrEqual(0);
      transport.close();
      router.close();
    } finally {
      worker.close();
    }
  });

  test("also announces the private address when given, for the region's TURN relay", async () => {
    const engine = loadMediaEngine();
    const worker = await engine.createWorker({
      index: 0,
      logLevel: 'warn',
      rtcMinPort: 21_210,
      rtcMaxPort: 21_219,
      listenIp: '127.0.0.1',
      announcedIp: '127.0.0.42',
      privateAnnouncedIp: '127.0.0.43',
    });
    try {
      const router = await worker.createRouter(ROOM_MEDIA_CODECS);
      const transport = await worker.createWebRtcTransport(router, {
        initialAvailableOutgoingBitrate: 1_000_000,
      });
      const candidates = transport.iceCandidates as Array<{
        ip?: string;
        address?: string;
        protocol: string;
      }>;
      const byAddress = (address: string) =>
        candidates
          .filter((c) => (c.ip ?? c.address) === address)
          .map((c) => c.protocol)
          .sort();
      expect(byAddress('127.0.0.42')).toEqual(['tcp', 'udp']);
      expect(byAddress('127.0.0.43')).toEqual(['tcp', 'udp']);
      expect(candidates).toHaveLength(4);
      transport.close();
      router.close();
    } finally {
      worker.close();
    }
  });
});
