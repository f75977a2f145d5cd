import { FleetCache, PLACED_ROOM_LOAD_ESTIMATE } from '../../../runtime/lb/fleetCache';
import type { Store } from '../../../runtime/store';
import { mediaServer, T0 } from './lbHarness';

describe('FleetCache pending load', () => {
  let now = T0;
  // pendingLoad and notePlaced never touch the store.
  const cache = new FleetCache({} as Store, {
    region: 'eu-west-1',
    clock: () => now,
    maxAgeMs: 1_000,
    onBackgroundError: () => undefined,
  });

  it('adds an estimate per room placed since the heartbeat the cached record carries, and forgets it after', () => {
    const server = mediaServer('m1', 'eu-west-1', { heartbeatAt: T0 });
    expect(cache.pendingLoad(server)).toBe(0);
    now = T0 + 100;
    cache.notePlaced('m1');
    now = T0 + 200;
    cache.notePlaced('m1');
    expect(cache.pendingLoad(server)).toBe(2 * PLACED_ROOM_LOAD_ESTIMATE);
    // A heartbeat written after the first placement already includes it.
    expect(cache.pendingLoad({ ...server, heartbeatAt: T0 + 150 })).toBe(PLACED_ROOM_LOAD_ESTIMATE);
    expect(cache.pendingLoad({ ...server, heartbeatAt: T0 + 250 })).toBe(0);
    expect(cache.pendingLoad(mediaServer('other', 'eu-west-1'))).toBe(0);
  });
});
