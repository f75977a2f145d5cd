/**
 * The real LB process started with the env contract the local supervisor uses, on a free loopback
 * port, against a bench database. It runs what production runs: runtime/lb/server.ts bundled by esbuild
 * exactly as runtime/lb/Dockerfile does (packages external), under plain node with the node flags of the
 * Dockerfile's CMD (source maps, heap sizes) and NODE_ENV=production — not under tsx, whose loader would
 * add its own memory to the LB's RSS, and not with the heap V8 would size from this machine's memory.
 */
import { build } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogLevel } from '../../../runtime/protocol/environment';
import { lbEnvironment } from '../../../runtime/protocol/lbEnvironment';
import { type KeySetDocument, parseKeySet } from '../../../runtime/protocol/tokens';
import { EMULATOR_CREDENTIALS, type CountedDynamo } from './countedDynamo';
import { freePort, ROOT, spawnNode, untilReady, waitForHttp, type BenchChild } from './processes';

const BENCH_JOIN_KEYS_DOC: KeySetDocument = {
  kid: 'bench-join',
  secret: 'bench-join-secret-0123456789abcdef-0123456789',
};
const BENCH_MEDIA_KEYS_DOC: KeySetDocument = {
  kid: 'bench-media',
  secret: 'bench-media-secret-0123456789abcdef-012345678',
};
/** What the bench's app backend signs join tokens with. */
export const BENCH_JOIN_KEYS = parseKeySet(BENCH_JOIN_KEYS_DOC);
/** What the bench's LB signs media tokens with (and a bench media server would verify). */
export const BENCH_MEDIA_KEYS = parseKeySet(BENCH_MEDIA_KEYS_DOC);

/** Inside node_modules so the bundle's external packages resolve from the repository's node_modules. */
const BUNDLE = path.join(ROOT, 'node_modules', '.cache', 'bench', 'lb-server.js');
const DOCKERFILE = path.join(ROOT, 'runtime', 'lb', 'Dockerfile');
/** What the image's CMD runs: the bundle, built to this path by the Dockerfile's build stage. */
const IMAGE_ENTRY = 'dist/lb/server.js';

/**
 * The node flags of the LB image's CMD (`["node", ...flags, "dist/lb/server.js"]`, its last CMD), so the
 * bench's LB has the task's heap sizes.
 */
export function imageNodeFlags(dockerfile: string): string[] {
  const cmd = [...dockerfile.matchAll(/^CMD\s+(.*)$/gm)].at(-1);
  const argv = cmd && parseExecForm(cmd[1]!);
  if (!argv || argv[0] !== 'node' || argv.at(-1) !== IMAGE_ENTRY) {
    throw new Error(
      `runtime/lb/Dockerfile must end with an exec-form CMD ["node", ...flags, "${IMAGE_ENTRY}"] for the bench to run the LB as the image does; found ${cmd ? `"${cmd[0]}"` : 'no CMD'}`,
    );
  }
  return argv.slice(1, -1);
}

/** A JSON array of strings (Docker's exec form), or undefined for the shell form or anything else. */
function parseExecForm(text: string): string[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.every((a) => typeof a === 'string') ? value : undefined;
}

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
  /** The node flags it runs with: the image's, then BENCH_LB_NODE_ARGS. */
  readonly nodeFlags: readonly string[];
  stop(): Promise<void>;
}

export async function startLbProcess(
  dynamo: CountedDynamo,
  opts: {
    /**
     * Production logs one line per join at `info`; the bench keeps that cost (stdout goes to /dev/null)
     * unless told otherwise. @default 'info'
     */
    logLevel?: LogLevel;
    /** The LB's region (a survivor of a herd bench). @default the database's region */
    region?: string;
  } = {},
): Promise<LbProcess> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // e.g. BENCH_LB_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/lb-prof" to see where a join's CPU goes;
  // they come after the image's flags, so they can also try other heap sizes.
  const extraArgs = (process.env.BENCH_LB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const nodeFlags = [...imageNodeFlags(fs.readFileSync(DOCKERFILE, 'utf8')), ...extraArgs];
  const proc = spawnNode('LB', [...nodeFlags, await bundleLb()], {
    env: {
      NODE_ENV: 'production',
      AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
      ...lbEnvironment({
        region: opts.region ?? dynamo.region,
        tableName: dynamo.tableName,
        dynamoEndpoint: dynamo.endpoint,
        joinTokenKeys: JSON.stringify(BENCH_JOIN_KEYS_DOC),
        mediaTokenKeys: JSON.stringify(BENCH_MEDIA_KEYS_DOC),
        host: '127.0.0.1',
        port,
        publicApiUrl: baseUrl,
        logLevel: opts.logLevel ?? 'info',
      }),
    },
  });
  await untilReady(proc, waitForHttp(`${baseUrl}/v1/ping`));
  return { process: proc, pid: proc.pid, baseUrl, port, nodeFlags, stop: () => proc.stop() };
}
