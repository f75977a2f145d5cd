import { FALLBACK_LOAD_PER_ROOM, FleetCache, loadPerRoom } from '../../../runtime/lb/FleetCache';
import type { Store } from '../../../runtime/store';
import { mediaServer, T0 } from './lbHarness';

describe('FleetCache pending rooms', () => {
  let now = T0;
  // The pending-room bookkeeping never touches the store.
  const cache = new FleetCache({
    store: {} as Store,
    region: 'eu-west-1',
    clock: () => now,
    maxAgeMs: 1_000,
    onBackgroundError: () => undefined,
  });
  const placeOn = (serverId: string, placed = true) => {
    cache.notePlacing(serverId);
    cache.notePlacingDone(serverId, placed);
  };

  it('counts each room placed since the heartbeat the cached record carries, and forgets it after', () => {
    const server = mediaServer('m1', 'eu-west-1', { heartbeatAt: T0 });
    expect(cache.pendingRooms(server)).toBe(0);
    now = T0 + 100;
    placeOn('m1');
    now = T0 + 200;
    placeOn('m1');
    expect(cache.pendingRooms(server)).toBe(2);
    // A heartbeat written after the first placement already includes it.
    expect(cache.pendingRooms({ ...server, heartbeatAt: T0 + 150 })).toBe(1);
    expect(cache.pendingRooms({ ...server, heartbeatAt: T0 + 250 })).toBe(0);
    expect(cache.pendingRooms(mediaServer('other', 'eu-west-1'))).toBe(0);
  });

  it('counts a room while its write is in flight, and only a placed one once the write is done', () => {
    const server = mediaServer('m2', 'eu-west-1', { heartbeatAt: T0 });
    now = T0 + 100;
    cache.notePlacing('m2');
    cache.notePlacing('m2');
    expect(cache.pendingRooms(server)).toBe(2);
    // A heartbeat cannot carry a room whose write has not finished, however recent it is.
    expect(cache.pendingRooms({ ...server, heartbeatAt: T0 + 5_000 })).toBe(2);
    cache.notePlacingDone('m2', false);
    expect(cache.pendingRooms(server)).toBe(1);
    now = T0 + 300;
    cache.notePlacingDone('m2', true);
    // Counted from when the write ended: a heartbeat written while it was in flight may lack its load.
    expect(cache.pendingRooms({ ...server, heartbeatAt: T0 + 200 })).toBe(1);
    expect(cache.pendingRooms({ ...server, heartbeatAt: T0 + 301 })).toBe(0);
  });
});

describe('loadPerRoom', () => {
  const alive = (s: { heartbeatAt: number }) => s.heartbeatAt >= T0;

  it("is the live servers' load over their rooms", () => {
    const servers = [
      mediaServer('a', 'eu-west-1', { load: 300, rooms: 10 }),
      mediaServer('b', 'us-east-1', { load: 500, rooms: 10 }),
      // Neither a dead server's last report nor a server without a room count says what rooms weigh now;
      // an idle server's load (its CPU floor) belongs to no room.
      mediaServer('dead', 'eu-west-1', { load: 5_000, rooms: 1, heartbeatAt: T0 - 1 }),
      mediaServer('old', 'eu-west-1', { load: 900 }),
      mediaServer('idle', 'eu-west-1', { load: 30, rooms: 0 }),
    ];
    expect(loadPerRoom(servers, alive)).toBe(40);
  });

  it('falls back to a two-peer call while no live server reports rooms', () => {
    expect(loadPerRoom([], alive)).toBe(FALLBACK_LOAD_PER_ROOM);
    expect(loadPerRoom([mediaServer('old', 'eu-west-1', { load: 900 })], alive)).toBe(FALLBACK_LOAD_PER_ROOM);
  });
});
