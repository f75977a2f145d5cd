/**
 * The real LB process started with the env contract the local supervisor uses, on a free loopback
 * port, against a bench database. It runs what production runs: runtime/lb/server.ts bundled by esbuild
 * exactly as runtime/lb/Dockerfile does (packages external), under plain `node --enable-source-maps`
 * with NODE_ENV=production — not under tsx, whose loader would add its own memory to the LB's RSS.
 */
import { build } from 'esbuild';
import * as path from 'node:path';
import { secretKey } from '../../../runtime/auth/tokens';
import { EMULATOR_CREDENTIALS, type CountedDynamo } from './countedDynamo';
import { freePort, ROOT, spawnNode, untilReady, waitForHttp, type BenchChild } from './processes';

export const BENCH_TOKEN_SECRET = 'bench-token-secret-0123456789abcdef-0123456789';
export const BENCH_TOKEN_KEY = secretKey(BENCH_TOKEN_SECRET);

/** Inside node_modules so the bundle's external packages resolve from the repository's node_modules. */
const BUNDLE = path.join(ROOT, 'node_modules', '.cache', 'bench', 'lb-server.js');

let bundled: Promise<string> | undefined;

/** Bundles the LB once per bench run (the Dockerfile's esbuild command, for this machine's Node). */
export function bundleLb(): Promise<string> {
  bundled ??= build({
    entryPoints: [path.join(ROOT, 'runtime', 'lb', 'server.ts')],
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    sourcemap: true,
    outfile: BUNDLE,
    logLevel: 'error',
  }).then(() => BUNDLE);
  return bundled;
}

export interface LbProcess {
  readonly process: BenchChild;
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startLbProcess(
  dynamo: CountedDynamo,
  opts: {
    /**
     * Production logs one line per join at `info`; the bench keeps that cost (stdout goes to /dev/null)
     * unless told otherwise. @default 'info'
     */
    logLevel?: string;
  } = {},
): Promise<LbProcess> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // e.g. BENCH_LB_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/lb-prof" to see where a join's CPU goes.
  const extraArgs = (process.env.BENCH_LB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawnNode('LB', [...extraArgs, '--enable-source-maps', await bundleLb()], {
    env: {
      NODE_ENV: 'production',
      REGION: dynamo.region,
      TABLE_NAME: dynamo.tableName,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
      TOKEN_SECRET: BENCH_TOKEN_SECRET,
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_API_URL: baseUrl,
      LOG_LEVEL: opts.logLevel ?? 'info',
    },
  });
  await untilReady(proc, waitForHttp(`${baseUrl}/v1/ping`));
  return { process: proc, pid: proc.pid, baseUrl, port, stop: () => proc.stop() };
}
