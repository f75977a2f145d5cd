/**
 * A real media server (real mediasoup worker, real signaling socket, real dynalite) started in the test
 * process through the same `startMediaServer` the process entry uses, so a suite can set the signaling
 * limits it needs, read `server.stats()` synchronously after every case, and see every log line.
 *
 * Tests that are about the process (crashes, signals, the production defaults) use
 * test/runtime/media/mediaServerProcess.ts instead.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import WebSocket from 'ws';
import { signalingSubprotocols } from '../../runtime/protocol/subprotocol';
import { parseKeySet, signMediaToken } from '../../runtime/protocol/tokens';
import {
  DEFAULT_PEER_LIMITS,
  DEFAULT_ROOM_LIMITS,
  DEFAULT_SIGNALING_LIMITS,
  type MediaServerConfig,
  type SignalingLimits,
} from '../../runtime/media/config';
import { loadMediaEngine } from '../../runtime/media/engine';
import { startMediaServer, type RunningMediaServer } from '../../runtime/media/lifecycle';
import type { ServerStats } from '../../runtime/media/MediaServer';
import type { ResponseFrame } from '../../runtime/protocol/signaling';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../support/dynalite';

export const MEDIA_KEYS = parseKeySet({
  kid: 'hardening-media',
  secret: 'hardening-media-secret-0123456789abcdef-0123',
});
/** pino's numeric level for `error`. */
const ERROR_LEVEL = 50;

export interface InProcessMediaServer {
  readonly running: RunningMediaServer;
  readonly dynamo: TestDynamo;
  readonly serverId: string;
  readonly port: number;
  readonly logs: Array<Record<string, unknown>>;
  /** The signaling URL of a room, with a media token in its query when given (as the LB relay opens it). */
  signalingUrl(roomId: string, urlToken?: string): string;
  mediaToken(
    roomId: string,
    peerId: string,
    opts?: { server?: string; ttlSeconds?: number; identity?: string },
  ): Promise<string>;
  /** Object counts as `/debug/stats` reports them, without the status fields. */
  counts(): Omit<ServerStats, 'status' | 'workers' | 'workerRestarts'>;
  /** Log lines at error level or above since `from` (an index into `logs`). */
  errorsSince(from: number): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startInProcessMediaServer(opts: {
  serverId: string;
  rtcMinPort: number;
  rtcMaxPort: number;
  signaling?: Partial<SignalingLimits>;
  /**
   * Loopback address for signaling and media, so a suite's RTC ports cannot collide with another's.
   * @default '127.0.0.1'
   */
  address?: string;
  /** Config fields a suite sets on top of the harness's (limits, capacity, intervals). */
  config?: Partial<MediaServerConfig>;
  /**
   * Level of the server's logger, whose every line lands in `logs`.
   * @default 'warn'
   */
  logLevel?: pino.Level;
}): Promise<InProcessMediaServer> {
  const address = opts.address ?? '127.0.0.1';
  // The store inside startMediaServer takes credentials from the environment, as on EC2.
  process.env.AWS_ACCESS_KEY_ID ??= TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= TEST_CREDENTIALS.secretAccessKey;
  const dynamo = await startDynalite();
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level: opts.logLevel ?? 'warn', base: { server: opts.serverId } }, sink);
  const config: MediaServerConfig = {
    region: dynamo.region,
    serverId: opts.serverId,
    tableName: dynamo.tableName,
    dynamoEndpoint: dynamo.endpoint,
    mediaTokenKeys: MEDIA_KEYS,
    listenHost: address,
    signalingPort: 0,
    privateEndpoint: `ws://${address}:0`,
    publicIp: address,
    privateIp: undefined,
    rtcListenIp: address,
    rtcMinPort: opts.rtcMinPort,
    rtcMaxPort: opts.rtcMaxPort,
    numWorkers: 1,
    capacity: 10_000,
    drainTimeoutMs: 1_000,
    heartbeatIntervalMs: 60_000,
    roomCheckIntervalMs: 60_000,
    roomRefreshIntervalMs: 3_600_000,
    workerLogLevel: 'none',
    signaling: { ...DEFAULT_SIGNALING_LIMITS, ...opts.signaling },
    peer: DEFAULT_PEER_LIMITS,
    room: DEFAULT_ROOM_LIMITS,
    debugEndpoints: true,
    logLevel: opts.logLevel ?? 'warn',
    ...opts.config,
  };
  const running = await startMediaServer({ config, engine: loadMediaEngine(), logger });
  const port = (running.app.server.address() as AddressInfo).port;
  return {
    running,
    dynamo,
    serverId: opts.serverId,
    port,
    logs,
    signalingUrl: (roomId, urlToken) =>
      `ws://${address}:${port}/v1/rooms/${roomId}/signal` +
      (urlToken ? `?token=${encodeURIComponent(urlToken)}` : ''),
    mediaToken: async (roomId, peerId, o = {}) =>
      (
        await signMediaToken(MEDIA_KEYS, {
          peerId,
          identity: o.identity ?? `user-${peerId}`,
          room: roomId,
          server: o.server ?? opts.serverId,
          ttlSeconds: o.ttlSeconds,
        })
      ).token,
    counts: () => {
      const { rooms, peers, transports, producers, consumers, loadUnits } = running.server.stats();
      return { rooms, peers, transports, producers, consumers, loadUnits };
    },
    errorsSince: (from) => logs.slice(from).filter((l) => Number(l.level) >= ERROR_LEVEL),
    close: async () => {
      await running.stop('test over');
      await dynamo.close();
    },
  };
}

/**
 * A signaling connection at the frame level: every client frame is answered by exactly one response
 * frame (the server serializes requests), so `exchange` pairs them without trusting the id the fuzzer
 * may have mangled. Notifications are kept apart.
 */
export class RawSignaling {
  readonly notifications: Array<{ notification: string; data: unknown }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly responses: ResponseFrame[] = [];
  private waiter?: (frame: ResponseFrame) => void;
  private closeInfo?: { code: number; reason: string };

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      }),
    );
    socket.on('error', () => {});
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as ResponseFrame | { notification: string; data: unknown };
      if ('notification' in frame) {
        this.notifications.push(frame);
        return;
      }
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(frame);
      } else this.responses.push(frame);
    });
  }

  /** Opens `url`; `token` is presented as a subprotocol, as clients do at the LB's edge. */
  static open(url: string, token?: string): Promise<RawSignaling> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, token === undefined ? [] : signalingSubprotocols(token));
      socket.once('open', () => resolve(new RawSignaling(socket)));
      socket.once('unexpected-response', (_req, res) =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode }),
        ),
      );
      socket.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get closeState(): { code: number; reason: string } | undefined {
    return this.closeInfo;
  }

  /**
   * Sends one frame and resolves with the server's answer to it, or with the close the frame caused.
   * The caller bounds the wait.
   */
  exchange(
    frame: string | Buffer,
    opts: { binary?: boolean } = {},
  ): Promise<{ response: ResponseFrame } | { closed: { code: number; reason: string } }> {
    const queued = this.responses.shift();
    if (queued)
      return Promise.reject(new Error(`an unanswered response was waiting: ${JSON.stringify(queued)}`));
    const answer = new Promise<{ response: ResponseFrame }>((resolve) => {
      this.waiter = (response) => resolve({ response });
    });
    this.socket.send(frame, { binary: opts.binary ?? false });
    return Promise.race([answer, this.closed.then((closed) => ({ closed }))]);
  }

  /** A request that must succeed; for setting up fixtures. */
  async request<T = Record<string, unknown>>(id: number, method: string, data: unknown): Promise<T> {
    const out = await this.exchange(JSON.stringify({ id, method, data }));
    if ('closed' in out)
      throw new Error(`${method}: socket closed (${out.closed.code} ${out.closed.reason})`);
    if (!out.response.ok) throw new Error(`${method}: ${JSON.stringify(out.response.error)}`);
    return out.response.data as T;
  }

  /** Drops answers nobody waited for (a test that sent frames on `socket` directly). */
  discardResponses(): void {
    this.responses.length = 0;
  }

  close(): void {
    if (this.isOpen) this.socket.close(1000);
  }
}
