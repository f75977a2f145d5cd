/**
 * One region's edge as production runs it, on loopback: the LB process (runtime/lb/server.ts, with its
 * default limits) in front of real media server processes, on a real dynalite. Tests join through the
 * LB's HTTP API and open the signaling URLs it answers, so every frame crosses the real relay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { lbEnvironment } from '../../runtime/protocol/lbEnvironment';
import { signJoinToken } from '../../runtime/protocol/tokens';
import { Store } from '../../runtime/store';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../support/dynalite';
import {
  freePort,
  MediaServerProcess,
  TEST_JOIN_KEYS,
  TEST_JOIN_KEYS_DOC,
  TEST_MEDIA_KEYS_DOC,
  type MediaServerProcessOptions,
} from '../runtime/media/mediaServerProcess';

const LB_ENTRY = path.join(__dirname, '..', '..', 'runtime', 'lb', 'server.ts');
const READY_TIMEOUT_MS = 30_000;

export interface JoinAnswer {
  readonly room: string;
  readonly region: string;
  readonly serverId: string;
  readonly signalingUrl: string;
  readonly mediaToken: string;
}

export class LbProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';

  constructor(
    readonly child: ChildProcess,
    readonly baseUrl: string,
  ) {
    child.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** JSON log lines at error level or above (pino level 50+). */
  errorLines(): string[] {
    return this.out.split('\n').filter((line) => /"level":(5\d|60)/.test(line));
  }

  output(): string {
    return this.out;
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface Edge {
  readonly dynamo: TestDynamo;
  readonly store: Store;
  readonly lb: LbProcess;
  readonly media: MediaServerProcess[];
  /** POSTs a join with a fresh join token for `sub`; resolves with the status and the JSON body. */
  join(
    room: string,
    opts?: { sub?: string; body?: unknown },
  ): Promise<{ status: number; body: JoinAnswer & { error?: { code: string; message: string } } }>;
  /** Waits until the LB's /health is 200 and its fleet sees every live media server. */
  waitReady(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEdge(opts: {
  media: Array<Omit<MediaServerProcessOptions, 'dynamo'>>;
}): Promise<Edge> {
  const dynamo = await startDynalite({ region: 'eu-west-1' });
  const store = new Store({
    region: dynamo.region,
    tableName: dynamo.tableName,
    endpoint: dynamo.endpoint,
    credentials: TEST_CREDENTIALS,
  });
  const media: MediaServerProcess[] = [];
  let lb: LbProcess | undefined;
  const stop = async () => {
    await lb?.kill();
    await Promise.all(media.map((m) => m.kill()));
    store.close();
    await dynamo.close();
  };
  try {
    for (const m of opts.media) media.push(await MediaServerProcess.start({ dynamo, ...m }));
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, ['--import', 'tsx', LB_ENTRY], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING: '1',
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        ...lbEnvironment({
          region: dynamo.region,
          tableName: dynamo.tableName,
          dynamoEndpoint: dynamo.endpoint,
          joinTokenKeys: JSON.stringify(TEST_JOIN_KEYS_DOC),
          mediaTokenKeys: JSON.stringify(TEST_MEDIA_KEYS_DOC),
          host: '127.0.0.1',
          port,
          publicApiUrl: baseUrl,
          logLevel: 'info',
        }),
      },
    });
    lb = new LbProcess(child, baseUrl);
  } catch (err) {
    await stop();
    throw err;
  }
  const started = lb;

  const join: Edge['join'] = async (room, o = {}) => {
    const token = await signJoinToken(TEST_JOIN_KEYS, { sub: o.sub ?? 'alice', room });
    const res = await fetch(`${started.baseUrl}/v1/rooms/${room}/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(o.body ?? {}),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as JoinAnswer };
  };

  return {
    dynamo,
    store,
    lb: started,
    media,
    join,
    waitReady: async () => {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        try {
          const res = await fetch(`${started.baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
          const body = (await res.json()) as { liveServers?: number };
          if (res.status === 200 && body.liveServers === media.length) return;
        } catch {
          // not listening yet
        }
        if (!started.running) throw new Error(`the LB exited:\n${started.output()}`);
        if (Date.now() > deadline)
          throw new Error(`the LB never became ready:\n${started.output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop,
  };
}
