/**
 * An LB app on a real dynalite, with a manual clock shared by the store and the app, and a log of every
 * DynamoDB command the app's client sends (counted through the SDK middleware stack).
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { type KeySetDocument, parseKeySet, signJoinToken } from '../../../runtime/protocol/tokens';
import { buildApp } from '../../../runtime/lb/app';
import { lbConfig, type LbConfigInput } from '../../../runtime/lb/config';
import { Store, type MediaServerRecord } from '../../../runtime/store';
import { logStoreCommands } from '../../support/commandLog';
import { startDynalite, TEST_CREDENTIALS, type TestDynamo } from '../../support/dynalite';

export const JOIN_KEYS_DOC: KeySetDocument = {
  kid: 'test-join',
  secret: 'lb-test-join-secret-0123456789abcdef-012345',
};
export const MEDIA_KEYS_DOC: KeySetDocument = {
  kid: 'test-media',
  secret: 'lb-test-media-secret-0123456789abcdef-01234',
};
/** The app backend's keys (join tokens). */
export const JOIN_KEYS = parseKeySet(JOIN_KEYS_DOC);
/** The LB's media-token keys (what media servers verify with). */
export const MEDIA_KEYS = parseKeySet(MEDIA_KEYS_DOC);
export const T0 = 1_800_000_000_000;

export class ManualClock {
  t = T0;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface LbHarness {
  readonly dynamo: TestDynamo;
  /** The app's own store (its client is the one being counted). */
  readonly store: Store;
  /** A second client on the same table, for setting the scene without touching the counter. */
  readonly admin: Store;
  readonly app: FastifyInstance;
  readonly clock: ManualClock;
  /** Names of the DynamoDB commands the app's store sent, in order. */
  readonly commands: string[];
  close(): Promise<void>;
}

export async function startLb(
  opts: {
    region?: string;
    config?: Partial<LbConfigInput>;
    storeOptions?: { endpoint?: string; maxAttempts?: number };
    logger?: FastifyBaseLogger;
    /** Share another harness's database (two regions' LBs on one table). @default a new dynalite */
    dynamo?: TestDynamo;
  } = {},
): Promise<LbHarness> {
  const region = opts.region ?? 'eu-west-1';
  const ownsDynamo = !opts.dynamo;
  const dynamo = opts.dynamo ?? (await startDynalite({ region }));
  const clock = new ManualClock();
  const storeOpts = { region, tableName: dynamo.tableName, credentials: TEST_CREDENTIALS, now: clock.now };
  const store = new Store({
    ...storeOpts,
    endpoint: opts.storeOptions?.endpoint ?? dynamo.endpoint,
    maxAttempts: opts.storeOptions?.maxAttempts,
  });
  const admin = new Store({ ...storeOpts, endpoint: dynamo.endpoint });
  const commands = logStoreCommands(store);
  const app = await buildApp({
    store,
    clock: clock.now,
    logger: opts.logger,
    config: lbConfig({
      region,
      publicApiUrl: `http://127.0.0.1:8080`,
      joinTokenKeys: JOIN_KEYS,
      mediaTokenKeys: MEDIA_KEYS,
      // Tests drive refreshes and reports by hand so that request counts are exact.
      fleetRefreshMs: 0,
      summaryIntervalMs: 0,
      ...opts.config,
      // The event-loop shedder judges this jest worker's loop, which lags whenever the machine is busy:
      // off unless a test sets it (shedding.test.ts does), or it would answer 503 to unrelated tests.
      limits: { maxEventLoopDelayMs: 60_000, ...opts.config?.limits },
    }),
  });
  await app.ready();
  return {
    dynamo,
    store,
    admin,
    app,
    clock,
    commands,
    async close() {
      await app.close();
      store.close();
      admin.close();
      if (ownsDynamo) await dynamo.close();
    },
  };
}

export function mediaServer(
  id: string,
  region: string,
  over: Partial<MediaServerRecord> = {},
): MediaServerRecord {
  return {
    id,
    region,
    endpoint: `ws://127.0.0.1:1`,
    publicIp: '127.0.0.1',
    capacity: 100,
    load: 0,
    status: 'active',
    heartbeatAt: T0,
    startedAt: T0 - 60_000,
    ...over,
  };
}

export function joinToken(room: string, sub = 'alice', ttlSeconds?: number): Promise<string> {
  return signJoinToken(JOIN_KEYS, { sub, room, ttlSeconds });
}

/** Every item of the table, for "nothing was written" checks. */
export async function scanTable(h: LbHarness): Promise<unknown[]> {
  const out = await h.admin.client.send(
    new ScanCommand({ TableName: h.dynamo.tableName, ConsistentRead: true }),
  );
  return (out.Items ?? []).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

export async function join(
  h: LbHarness,
  room: string,
  opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
) {
  const token = opts.token === undefined ? await joinToken(room) : opts.token;
  return h.app.inject({
    method: 'POST',
    url: `/v1/rooms/${room}/join`,
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...opts.headers },
    ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
  });
}
