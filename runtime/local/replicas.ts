/**
 * How anything outside a region's processes reaches the local table: the emulator's credentials (it
 * accepts any; every local client, child processes included, sends these) and stores on one region's
 * replica, for tools that watch or drive the stack from outside every region (dashboard, chaos).
 */
import { Store } from '../store';
import type { LocalRegion } from './layout';

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * A store on one region's local replica. One attempt and a short timeout, so a dead region shows as
 * dead at once instead of stalling the view behind SDK retries.
 */
export function localReplicaStore(region: string, tableName: string, endpoint: string): Store {
  return new Store({
    region,
    tableName,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestTimeoutMs: 1_000,
  });
}

/** One store per region of the stack, made on first use and closed together when the stack stops. */
export class ReplicaStores {
  private readonly stores = new Map<string, Store>();

  constructor(
    private readonly tableName: string,
    private readonly regions: readonly LocalRegion[],
  ) {}

  get(region: string): Store {
    const r = this.regions.find((x) => x.name === region);
    if (!r)
      throw new Error(
        `region "${region}" is not part of this stack (${this.regions.map((x) => x.name).join(', ')})`,
      );
    let store = this.stores.get(region);
    if (!store) {
      store = localReplicaStore(region, this.tableName, r.dynamoEndpoint);
      this.stores.set(region, store);
    }
    return store;
  }

  closeAll(): void {
    for (const s of this.stores.values()) s.close();
  }
}
