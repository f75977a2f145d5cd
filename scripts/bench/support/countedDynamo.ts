/**
 * The bench side of dynamoProcess.ts: a dynalite in its own process, its counted endpoint for the LB,
 * its admin endpoint for the bench's own writes, and the request counts on demand.
 */
import * as path from 'node:path';
import { Store } from '../../../runtime/store';
import type { RequestCounts } from './dynamoRequests';
import { ipcAsk, ipcReady, spawnTs, type BenchChild } from './processes';

export const BENCH_REGION = 'eu-west-1';

export const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface CountedDynamo {
  readonly process: BenchChild;
  /** What the LB's DYNAMODB_ENDPOINT points at; every request here is counted. */
  readonly endpoint: string;
  readonly adminEndpoint: string;
  readonly tableName: string;
  readonly region: string;
  /** A store on the admin endpoint (uncounted) for registering servers and heartbeats. */
  adminStore(opts?: { serverLivenessMs?: number }): Store;
  counts(): Promise<RequestCounts>;
  close(): Promise<void>;
}

interface ReadyMessage {
  readonly type: 'ready';
  readonly endpoint: string;
  readonly adminEndpoint: string;
  readonly tableName: string;
}

export async function startCountedDynamo(region = BENCH_REGION): Promise<CountedDynamo> {
  const proc = spawnTs('dynalite', path.join(__dirname, 'dynamoProcess.ts'), {
    env: { REGION: region, TABLE_NAME: 'bench-rooms' },
    ipc: true,
  });
  const ready = await ipcReady<ReadyMessage>(proc);
  const stores: Store[] = [];
  return {
    process: proc,
    endpoint: ready.endpoint,
    adminEndpoint: ready.adminEndpoint,
    tableName: ready.tableName,
    region,
    adminStore(opts = {}) {
      const store = new Store({
        region,
        tableName: ready.tableName,
        endpoint: ready.adminEndpoint,
        credentials: EMULATOR_CREDENTIALS,
        ...opts,
      });
      stores.push(store);
      return store;
    },
    counts: async () => (await ipcAsk<{ counts: RequestCounts }>(proc, 'counts')).counts,
    async close() {
      for (const s of stores) s.close();
      await proc.stop();
    },
  };
}
