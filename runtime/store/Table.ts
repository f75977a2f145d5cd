/**
 * The plumbing under the repositories: one document client on this region's replica of the single
 * table, with the request timeout and attempt settings, and the helpers every repository shares.
 *
 * Policy: every call goes to this region's replica only; every failure leaves here as a StoreError
 * (errors.ts), so callers never branch on AWS SDK error names. A failed condition is not a failure:
 * global tables check it against this replica alone, and each repository decides what losing means.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThrottledError, toStoreError } from './errors';

/** DynamoDB's limit of keys in one BatchGetItem. */
export const BATCH_GET_MAX_KEYS = 100;
/** Rounds of UnprocessedKeys (throttling) one batch read retries before it gives up. */
const BATCH_GET_MAX_ROUNDS = 4;
const BATCH_GET_RETRY_BASE_MS = 25;

export interface TableOptions {
  /** AWS region of the replica this process talks to. */
  readonly region: string;
  readonly tableName: string;
  /** Custom endpoint (the local emulator); default: the regional DynamoDB endpoint. */
  readonly endpoint?: string;
  readonly credentials?: DynamoDBClientConfig['credentials'];
  /** Per-request socket timeout, ms. A dead replica must fail fast, not hang a join. @default 2000 */
  readonly requestTimeoutMs?: number;
  /** SDK attempts per call (throttling and 5xx retries). @default 3 */
  readonly maxAttempts?: number;
  /** An existing client to share (tests count requests through its middleware stack). */
  readonly client?: DynamoDBClient;
}

export interface Item {
  [key: string]: unknown;
}

export type ItemKey = Record<string, unknown>;

export function createDynamoClient(opts: TableOptions): DynamoDBClient {
  return new DynamoDBClient({
    region: opts.region,
    endpoint: opts.endpoint,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.requestTimeoutMs ?? 2_000,
      requestTimeout: opts.requestTimeoutMs ?? 2_000,
      // Without this the SDK only logs a warning at the timeout and keeps waiting on a silent replica.
      throwOnRequestTimeout: true,
    }),
  });
}

export class Table {
  readonly name: string;
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;

  constructor(opts: TableOptions) {
    this.name = opts.tableName;
    this.client = opts.client ?? createDynamoClient(opts);
    this.doc = DynamoDBDocumentClient.from(this.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  close(): void {
    this.client.destroy();
  }

  /** Runs one request; any failure becomes a StoreError naming `operation` and the table. */
  async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, this.name, operation);
    }
  }

  /**
   * Runs one conditional write: its output, or null when its condition failed on this replica (the
   * item is not in the state the caller expected). Any other failure becomes a StoreError.
   */
  async runConditional<T extends object>(operation: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (isConditionFailure(err)) return null;
      throw toStoreError(err, this.name, operation);
    }
  }

  /** Every page of a query. */
  async queryAll(operation: string, input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.run(operation, () =>
        this.doc.send(new QueryCommand({ ...input, TableName: this.name, ExclusiveStartKey: start })),
      );
      items.push(...((out.Items ?? []) as Item[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /**
   * Strongly consistent reads of `keys`, BATCH_GET_MAX_KEYS per BatchGetItem, one after another; the
   * items found, in no particular order (a key with no item is simply absent).
   */
  async batchGet(operation: string, keys: readonly ItemKey[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX_KEYS) {
      items.push(...(await this.batchGetOnce(operation, keys.slice(i, i + BATCH_GET_MAX_KEYS))));
    }
    return items;
  }

  /** One BatchGetItem, retrying the keys DynamoDB left unprocessed (it does so when throttled). */
  private async batchGetOnce(operation: string, firstKeys: readonly ItemKey[]): Promise<Item[]> {
    const items: Item[] = [];
    let keys = firstKeys;
    for (let round = 0; keys.length > 0; round++) {
      if (round === BATCH_GET_MAX_ROUNDS) {
        throw new ThrottledError(`${operation} on "${this.name}": ${keys.length} keys stayed unprocessed`);
      }
      if (round > 0) await sleep(BATCH_GET_RETRY_BASE_MS * 2 ** round);
      const out = await this.run(operation, () =>
        this.doc.send(
          new BatchGetCommand({ RequestItems: { [this.name]: { Keys: [...keys], ConsistentRead: true } } }),
        ),
      );
      items.push(...((out.Responses?.[this.name] ?? []) as Item[]));
      keys = out.UnprocessedKeys?.[this.name]?.Keys ?? [];
    }
    return items;
  }
}

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}
