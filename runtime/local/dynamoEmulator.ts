/**
 * The local DynamoDB global table: one in-memory dynalite per region, each behind a public endpoint on its
 * region's address, with replication between them (see Replicator.ts) and the table created as the CDK
 * declares it. Runtime processes reach their region's endpoint through the normal AWS SDK.
 *
 * Fault controls for chaos and tests:
 *   - `pause(region)` / `resume(region)`: a partition; the region's endpoint still answers locally;
 *   - `stopEndpoint(region, 'refuse' | 'blackhole')` / `startEndpoint(region)`: the endpoint is dead or
 *     unreachable; replication to and from the region's data carries on unless it is paused as well.
 */
import type { LocalStackConfig } from './topology';
import { DynamoProxy, type EndpointState, type UpstreamResponse } from './DynamoProxy';
import { RegionReplica, type ReplicatedWrite } from './RegionReplica';
import { type RegionReplicationStats, Replicator } from './Replicator';

/** How often expired items are swept, like DynamoDB TTL (which takes its time too). */
const DEFAULT_TTL_SWEEP_INTERVAL_MS = 30_000;

export interface DynamoRegionEndpoint {
  readonly name: string;
  readonly address: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

export interface DynamoEmulatorOptions {
  readonly regions: readonly DynamoRegionEndpoint[];
  readonly tableName: string;
  /** Replication delay per write. */
  readonly lagMs: number;
  /** 0 turns the TTL sweep off. @default 30000 */
  readonly ttlSweepIntervalMs?: number;
  readonly now?: () => number;
  /** Faults of the emulator itself (a failed replication apply or TTL sweep). @default logs to stderr */
  readonly onError?: (err: Error, context: string) => void;
}

export interface DynamoEmulatorStats {
  readonly lagMs: number;
  readonly regions: Record<
    string,
    RegionReplicationStats & { endpoint: string; endpointState: EndpointState }
  >;
}

export interface DynamoEmulator {
  /** Region name → public endpoint URL (DYNAMODB_ENDPOINT). */
  readonly endpoints: Record<string, string>;
  pause(region: string): void;
  resume(region: string): void;
  setLag(lagMs: number): void;
  stopEndpoint(region: string, mode?: 'refuse' | 'blackhole'): Promise<void>;
  startEndpoint(region: string): Promise<void>;
  stats(): DynamoEmulatorStats;
  close(): Promise<void>;
}

/** The regions, addresses and port of the local topology in the deployment config. */
export function dynamoRegionsFromConfig(config: LocalStackConfig): DynamoRegionEndpoint[] {
  return config.local.regions.map((r) => ({
    name: r.name,
    address: r.address,
    port: config.local.dynamoPort,
  }));
}

export async function startDynamoEmulator(opts: DynamoEmulatorOptions): Promise<DynamoEmulator> {
  const names = opts.regions.map((r) => r.name);
  if (new Set(names).size !== names.length)
    throw new Error(`regions must be unique, got ${names.join(', ')}`);
  const onError =
    opts.onError ?? ((err, context) => console.error(`[dynamo-emulator] ${context}: ${err.message}`));

  const replicas = new Map<string, RegionReplica>();
  const proxies = new Map<string, DynamoProxy>();
  let replicator: Replicator | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;

  const closeAll = async () => {
    if (sweepTimer) clearInterval(sweepTimer);
    await Promise.all([...proxies.values()].map((p) => p.close()));
    await replicator?.close();
    await Promise.all([...replicas.values()].map((r) => r.close()));
  };

  const publish = (writes: readonly ReplicatedWrite[]) => writes.forEach((w) => replicator?.publish(w));

  try {
    for (const region of opts.regions) {
      replicas.set(
        region.name,
        await RegionReplica.start({ ...region, tableName: opts.tableName, now: opts.now }),
      );
    }
    replicator = new Replicator({
      targets: [...replicas.values()],
      lagMs: opts.lagMs,
      now: opts.now,
      onError: (err, target) => onError(err, `replicating to ${target}`),
    });
    for (const region of opts.regions) {
      const replica = replicas.get(region.name)!;
      const onWrite = async (operation: string, body: Buffer, forward: () => Promise<UpstreamResponse>) => {
        const { response, writes, error } = await replica.localWrite(operation, body, forward);
        if (error) onError(error, `${region.name} ${operation} read-back`);
        publish(writes);
        return response;
      };
      proxies.set(
        region.name,
        await DynamoProxy.start({
          address: region.address,
          port: region.port,
          upstream: replica.internalEndpoint,
          onWrite,
        }),
      );
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  const sweepIntervalMs = opts.ttlSweepIntervalMs ?? DEFAULT_TTL_SWEEP_INTERVAL_MS;
  if (sweepIntervalMs > 0) {
    let sweeping = false;
    sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      void Promise.all(
        [...replicas.values()].map((r) =>
          r.sweepExpired().then(publish, (err: Error) => onError(err, `${r.name} TTL sweep`)),
        ),
      ).finally(() => (sweeping = false));
    }, sweepIntervalMs);
    sweepTimer.unref();
  }

  const proxyOf = (region: string): DynamoProxy => {
    const proxy = proxies.get(region);
    if (!proxy) throw new Error(`unknown region "${region}"; the emulator runs ${names.join(', ')}`);
    return proxy;
  };
  const rep = replicator;

  return {
    endpoints: Object.fromEntries([...proxies].map(([name, p]) => [name, p.url])),
    pause: (region) => rep.pause(region),
    resume: (region) => rep.resume(region),
    setLag: (lagMs) => rep.setLag(lagMs),
    stopEndpoint: (region, mode = 'refuse') =>
      mode === 'refuse' ? proxyOf(region).refuse() : proxyOf(region).blackhole(),
    startEndpoint: (region) => proxyOf(region).restore(),
    stats: () => {
      const replication = rep.stats();
      return {
        lagMs: rep.lagMs,
        regions: Object.fromEntries(
          names.map((name) => [
            name,
            { ...replication[name]!, endpoint: proxyOf(name).url, endpointState: proxyOf(name).state },
          ]),
        ),
      };
    },
    close: closeAll,
  };
}
