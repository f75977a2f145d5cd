/**
 * Runs the real media server (runtime/media/server.ts) as a child process, the way the local stack and
 * EC2 do: environment in, JSON logs out. Tests read its logs, its `/debug/stats`, and signal it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { type KeySetDocument, parseKeySet, signMediaToken } from '../../../runtime/protocol/tokens';
import { mediaEnvironment } from '../../../runtime/protocol/mediaEnvironment';
import type { TestDynamo } from '../../support/dynalite';
import { TEST_CREDENTIALS } from '../../support/dynalite';

const ROOT = path.resolve(__dirname, '../../..');
/** The media-token keys the server process verifies with (MEDIA_TOKEN_KEYS). */
export const TEST_MEDIA_KEYS_DOC: KeySetDocument = {
  kid: 'test-media',
  secret: 'media-test-secret-0123456789abcdef-0123456789',
};
export const TEST_MEDIA_KEYS = parseKeySet(TEST_MEDIA_KEYS_DOC);
/** Join-token keys, for tests that put an LB process in front (test/hardening/edgeHarness.ts). */
export const TEST_JOIN_KEYS_DOC: KeySetDocument = {
  kid: 'test-join',
  secret: 'join-test-secret-0123456789abcdef-01234567890',
};
export const TEST_JOIN_KEYS = parseKeySet(TEST_JOIN_KEYS_DOC);
const READY_TIMEOUT_MS = 20_000;

export interface MediaServerProcessOptions {
  readonly dynamo: TestDynamo;
  readonly serverId: string;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  readonly numWorkers?: number;
  readonly capacity?: number;
  readonly drainTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly roomCheckIntervalMs?: number;
  readonly pingIntervalMs?: number;
  readonly env?: Record<string, string>;
}

export interface ServerStatsView {
  status: string;
  workers: number;
  rooms: number;
  peers: number;
  transports: number;
  producers: number;
  consumers: number;
  loadUnits: number;
}

export class MediaServerProcess {
  readonly logs: Array<Record<string, unknown>> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly serverId: string,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.logs.push({ msg: line });
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  static async start(opts: MediaServerProcessOptions): Promise<MediaServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'runtime/media/server.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        ...mediaEnvironment(
          {
            region: opts.dynamo.region,
            tableName: opts.dynamo.tableName,
            dynamoEndpoint: opts.dynamo.endpoint,
            listenHost: '127.0.0.1',
            signalingPort: port,
            rtcMinPort: opts.rtcMinPort,
            rtcMaxPort: opts.rtcMaxPort,
            numWorkers: opts.numWorkers ?? 1,
            capacity: opts.capacity ?? 100,
            drainTimeoutMs: opts.drainTimeoutMs ?? 30_000,
            heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 500,
            roomCheckIntervalMs: opts.roomCheckIntervalMs ?? 500,
            pingIntervalMs: opts.pingIntervalMs ?? 1_000,
            debugEndpoints: true,
            logLevel: 'debug',
          },
          {
            serverId: opts.serverId,
            publicIp: '127.0.0.1',
            privateEndpoint: `ws://127.0.0.1:${port}`,
            mediaTokenKeys: JSON.stringify(TEST_MEDIA_KEYS_DOC),
          },
        ),
        ...opts.env,
      },
    });
    const proc = new MediaServerProcess(child, opts.serverId, port);
    await proc
      .waitForLog((l) => l.msg === 'media server ready', READY_TIMEOUT_MS)
      .catch(async (err: Error) => {
        child.kill('SIGKILL');
        throw new Error(
          `${err.message}\nstderr:\n${proc.stderr}\nlogs:\n${proc.logs.map((l) => JSON.stringify(l)).join('\n')}`,
        );
      });
    return proc;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  signalingUrl(roomId: string): string {
    return `ws://127.0.0.1:${this.port}/v1/rooms/${roomId}/signal`;
  }

  async mediaToken(
    roomId: string,
    peerId: string,
    opts: { server?: string; ttlSeconds?: number } = {},
  ): Promise<string> {
    const { token } = await signMediaToken(TEST_MEDIA_KEYS, {
      peerId,
      identity: `user-${peerId}`,
      room: roomId,
      server: opts.server ?? this.serverId,
      ttlSeconds: opts.ttlSeconds,
    });
    return token;
  }

  async stats(): Promise<ServerStatsView> {
    const res = await fetch(`${this.baseUrl}/debug/stats`);
    if (!res.ok) throw new Error(`/debug/stats answered ${res.status}`);
    return (await res.json()) as ServerStatsView;
  }

  /** Resolves with the first log line (past or future) that matches; bounded by `timeoutMs`. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onData = () => {
        const line = this.logs.find(match);
        if (line) finish(() => resolve(line));
      };
      const onExit = () =>
        finish(() => reject(new Error(`media server exited before the expected log line`)));
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no matching log line in ${timeoutMs} ms`))),
        timeoutMs,
      );
      // Checked a tick later, after the constructor's listener has parsed the chunk into lines.
      const onChunk = () => setImmediate(onData);
      const finish = (then: () => void) => {
        clearTimeout(timer);
        this.child.stdout!.off('data', onChunk);
        this.child.off('exit', onExit);
        then();
      };
      this.child.stdout!.on('data', onChunk);
      this.child.once('exit', onExit);
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Kills the process (and, through mediasoup's channel, its workers) if it is still running. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A free TCP port on loopback (the OS picks; the small race before the server binds is acceptable). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
