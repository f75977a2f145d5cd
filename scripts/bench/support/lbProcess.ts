/**
 * The real LB process (runtime/lb/server.ts) started with the env contract the local supervisor uses,
 * on a free loopback port, against a bench database.
 */
import * as path from 'node:path';
import { secretKey } from '../../../runtime/auth/tokens';
import { EMULATOR_CREDENTIALS, type CountedDynamo } from './countedDynamo';
import { freePort, ROOT, spawnTs, untilReady, waitForHttp, type BenchChild } from './processes';

export const BENCH_TOKEN_SECRET = 'bench-token-secret-0123456789abcdef-0123456789';
export const BENCH_TOKEN_KEY = secretKey(BENCH_TOKEN_SECRET);

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
  const proc = spawnTs('LB', path.join(ROOT, 'runtime', 'lb', 'server.ts'), {
    env: {
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
