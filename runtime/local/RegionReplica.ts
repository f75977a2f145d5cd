/**
 * One region's copy of the global table: a dynalite plus the write versions that make replication
 * last-writer-wins per item.
 *
 * Every item carries the version (write time, origin region) of the write that produced its current
 * value here. A replicated write applies only if its version is newer, so an older write never overwrites
 * a newer one and all replicas converge on the same value whatever the delivery order. Equal times are
 * broken by origin region name, so two regions never disagree on the winner.
 */
import {
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTableInput, TABLE_KEYS } from '../store/schema';
import type { UpstreamResponse } from './DynamoProxy';
import { SerialLock } from './SerialLock';
import { type AttributeMap, keyId, keyOf, writtenKeys } from './writtenKeys';

// dynalite ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (opts: {
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}) => http.Server;

const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface WriteVersion {
  /** Epoch ms of the write in its origin region. */
  readonly writtenAt: number;
  readonly origin: string;
}

/** One changed item on its way to the other regions; `item: null` is a delete. */
export interface ReplicatedWrite extends WriteVersion {
  readonly key: AttributeMap;
  readonly item: AttributeMap | null;
}

export type ApplyOutcome = 'applied' | 'superseded';

export function isNewer(a: WriteVersion, b: WriteVersion): boolean {
  return a.writtenAt > b.writtenAt || (a.writtenAt === b.writtenAt && a.origin > b.origin);
}

export class RegionReplica {
  private readonly lock = new SerialLock();
  private readonly versions = new Map<string, WriteVersion>();

  static async start(opts: {
    name: string;
    address: string;
    tableName: string;
    now?: () => number;
  }): Promise<RegionReplica> {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, opts.address, () => resolve());
    });
    const endpoint = `http://${opts.address}:${(server.address() as AddressInfo).port}`;
    const client = new DynamoDBClient({ region: opts.name, endpoint, credentials: LOCAL_CREDENTIALS });
    const replica = new RegionReplica(
      opts.name,
      opts.tableName,
      endpoint,
      server,
      client,
      opts.now ?? Date.now,
    );
    await client.send(new CreateTableCommand(createTableInput(opts.tableName)));
    return replica;
  }

  private constructor(
    readonly name: string,
    readonly tableName: string,
    /** The dynalite itself, behind the region's public endpoint. */
    readonly internalEndpoint: string,
    private readonly server: http.Server,
    private readonly client: DynamoDBClient,
    private readonly now: () => number,
  ) {}

  /**
   * Runs a client's write against this region and returns what changed, versioned. The read-back happens
   * under the same lock as the write, so it sees exactly what this write left behind.
   */
  localWrite(
    operation: string,
    body: Buffer,
    forward: () => Promise<UpstreamResponse>,
  ): Promise<{ response: UpstreamResponse; writes: ReplicatedWrite[]; error?: Error }> {
    return this.lock.run(async () => {
      const response = await forward();
      if (response.status !== 200) return { response, writes: [] };
      const writes: ReplicatedWrite[] = [];
      try {
        const request: unknown = JSON.parse(body.toString('utf8'));
        const result: unknown = JSON.parse(response.body.toString('utf8'));
        for (const key of writtenKeys(operation, request, result, this.tableName))
          writes.push(await this.recordLocal(key));
      } catch (err) {
        // The write itself succeeded; the client must hear so even if replicating it failed.
        return { response, writes, error: err as Error };
      }
      return { response, writes };
    });
  }

  /** Applies another region's write unless this replica already holds a newer version of the item. */
  apply(write: ReplicatedWrite): Promise<ApplyOutcome> {
    return this.lock.run(async () => {
      const current = this.versions.get(keyId(write.key));
      if (current && !isNewer(write, current)) return 'superseded';
      if (write.item) {
        await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: write.item }));
      } else {
        await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: write.key }));
      }
      this.versions.set(keyId(write.key), { writtenAt: write.writtenAt, origin: write.origin });
      return 'applied';
    });
  }

  /**
   * DynamoDB TTL, which dynalite lacks: deletes items whose `expiresAt` (epoch seconds) has passed. Like
   * AWS TTL deletes, they are ordinary local deletes and replicate to the other regions.
   */
  async sweepExpired(): Promise<ReplicatedWrite[]> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const expired: AttributeMap[] = [];
    let start: AttributeMap | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#ttl < :now',
          ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
          ExpressionAttributeValues: { ':now': { N: String(nowSeconds) } },
          ExclusiveStartKey: start,
        }),
      );
      expired.push(...(page.Items ?? []).map(keyOf));
      start = page.LastEvaluatedKey;
    } while (start);
    const writes: ReplicatedWrite[] = [];
    for (const key of expired) {
      const write = await this.lock.run(async () => {
        try {
          // The item may have been rewritten with a later expiry since the scan.
          await this.client.send(
            new DeleteItemCommand({
              TableName: this.tableName,
              Key: key,
              ConditionExpression: '#ttl < :now',
              ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute },
              ExpressionAttributeValues: { ':now': { N: String(nowSeconds) } },
            }),
          );
        } catch (err) {
          if ((err as Error).name === 'ConditionalCheckFailedException') return null;
          throw err;
        }
        return this.recordLocal(key);
      });
      if (write) writes.push(write);
    }
    return writes;
  }

  async close(): Promise<void> {
    this.client.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Caller holds the lock. */
  private async recordLocal(key: AttributeMap): Promise<ReplicatedWrite> {
    const read = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    const version = this.nextLocalVersion(keyId(key));
    this.versions.set(keyId(key), version);
    return { ...version, key, item: read.Item ?? null };
  }

  /**
   * A local write's version is its wall-clock time, pushed past the item's current version if needed: a
   * write made after a replicated apply must win over it everywhere, not just here.
   */
  private nextLocalVersion(id: string): WriteVersion {
    const now: WriteVersion = { writtenAt: this.now(), origin: this.name };
    const current = this.versions.get(id);
    if (!current || isNewer(now, current)) return now;
    return { writtenAt: current.writtenAt + 1, origin: this.name };
  }
}
