/** The pure parts of placement and alternates, on hand-built fleet snapshots (no I/O to fake). */
import { chooseAlternates } from '../../../runtime/lb/alternates';
import { FALLBACK_LOAD_PER_ROOM, type FleetSnapshot } from '../../../runtime/lb/FleetCache';
import { chooseServer, NO_EXCLUSIONS, type PlacementContext } from '../../../runtime/lb/Placement';
import { signalingUrl, upstreamSignalingUrl } from '../../../runtime/lb/regionUrls';
import type { MediaServerRecord, RegionView } from '../../../runtime/store';
import { mediaServer, T0 } from './lbHarness';

const LIVENESS_MS = 7_000;

function snapshot(
  servers: MediaServerRecord[],
  regions: Array<Partial<RegionView> & { region: string }>,
): FleetSnapshot {
  return {
    fetchedAt: T0,
    loadPerRoom: FALLBACK_LOAD_PER_ROOM,
    servers: new Map(servers.map((s) => [s.id, s])),
    regions: new Map(
      regions.map((r) => [
        r.region,
        {
          status: 'active',
          reason: '',
          statusUpdatedAt: null,
          summary: {
            region: r.region,
            apiUrl: `https://${r.region}.api.example.com`,
            liveServers: 1,
            load: 0,
            capacity: 1,
            reportedAt: T0,
          },
          ...r,
        },
      ]),
    ),
  };
}

const ctx = (over: Partial<PlacementContext> = {}): PlacementContext => ({
  region: 'eu-west-1',
  publicApiUrl: 'https://eu-west-1.api.example.com',
  now: T0,
  isAlive: (s, now) => now - s.heartbeatAt < LIVENESS_MS,
  exclude: NO_EXCLUSIONS,
  random: () => 0,
  ...over,
});

describe('chooseServer', () => {
  it('compares load relative to capacity, and breaks ties by id', () => {
    const a = mediaServer('a', 'eu-west-1', { load: 1, capacity: 10 });
    expect(chooseServer(snapshot([mediaServer('b', 'eu-west-1', { load: 10 }), a], []), ctx())?.id).toBe('a');
    expect(chooseServer(snapshot([mediaServer('b', 'eu-west-1', { load: 9 }), a], []), ctx())?.id).toBe('b');
  });

  it('takes the less loaded of two servers drawn at random, never the fullest', () => {
    const servers = [10, 20, 30, 40].map((load, i) => mediaServer(`s${i}`, 'eu-west-1', { load }));
    const snap = snapshot(servers, []);
    /** The draw of `first` and then of the second among the three others, counted on from `first`. */
    const draw = (first: number, skip: number) => {
      const values = [(first + 0.5) / 4, (skip + 0.5) / 3];
      return () => values.shift()!;
    };
    // s3 and s2 drawn: s2, though s0 is lighter.
    expect(chooseServer(snap, ctx({ random: draw(3, 2) }))?.id).toBe('s2');
    const picks = new Set<string | undefined>();
    for (let first = 0; first < 4; first++) {
      for (let skip = 0; skip < 3; skip++) {
        picks.add(chooseServer(snap, ctx({ random: draw(first, skip) }))?.id);
      }
    }
    expect([...picks].sort()).toEqual(['s0', 's1', 's2']);
  });

  it('draws only among servers with room to spare once pending load is counted', () => {
    const servers = [10, 20, 30].map((load, i) => mediaServer(`s${i}`, 'eu-west-1', { load }));
    const pendingLoad = (s: MediaServerRecord) => (s.id === 's0' ? 90 : 0);
    // With s0 full, s1 and s2 are the only pair there is, whatever would have been drawn among three.
    for (const values of [
      [0, 0],
      [0, 0.5],
      [0.5, 0],
      [0.5, 0.5],
      [0.9, 0],
      [0.9, 0.5],
    ]) {
      const random = () => values.shift()!;
      expect(chooseServer(snapshot(servers, []), ctx({ pendingLoad, random }))?.id).toBe('s1');
    }
  });

  it('prefers any capacity at home over an idle region abroad', () => {
    const snap = snapshot(
      [mediaServer('home', 'eu-west-1', { load: 99, capacity: 100 }), mediaServer('us', 'us-east-1')],
      [{ region: 'us-east-1' }],
    );
    expect(chooseServer(snap, ctx())?.id).toBe('home');
  });

  it('goes to the nearest region with capacity, skipping evacuated, excluded and URL-less ones', () => {
    const servers = [
      mediaServer('eu-central', 'eu-central-1'),
      mediaServer('us', 'us-east-1'),
      mediaServer('ap', 'ap-southeast-1'),
      mediaServer('eu-west-2', 'eu-west-2'),
    ];
    const regions = [
      { region: 'eu-west-2', summary: null },
      { region: 'eu-central-1', status: 'evacuated' as const },
      { region: 'us-east-1' },
      { region: 'ap-southeast-1' },
    ];
    expect(chooseServer(snapshot(servers, regions), ctx())?.id).toBe('us');
    const exclude = { serverIds: new Set<string>(), regions: new Set(['us-east-1']) };
    expect(chooseServer(snapshot(servers, regions), ctx({ exclude }))?.id).toBe('ap');
  });

  it('counts the load it sent to a server since that server last reported', () => {
    const snap = snapshot([mediaServer('a', 'eu-west-1'), mediaServer('b', 'eu-west-1', { load: 10 })], []);
    expect(chooseServer(snap, ctx())?.id).toBe('a');
    expect(chooseServer(snap, ctx({ pendingLoad: (s) => (s.id === 'a' ? 12 : 0) }))?.id).toBe('b');
    // Pending load that fills a server takes it out of the choice altogether.
    const full = ctx({ pendingLoad: (s) => (s.id === 'a' ? 100 : 95) });
    expect(chooseServer(snap, full)).toBeNull();
  });

  it('never picks a server with zero capacity', () => {
    expect(
      chooseServer(snapshot([mediaServer('z', 'eu-west-1', { load: 0, capacity: 0 })], []), ctx()),
    ).toBeNull();
  });
});

describe('chooseServer for a takeover', () => {
  const fleet = [
    mediaServer('us-1', 'us-east-1'),
    mediaServer('eu-a', 'eu-west-1', { load: 90, capacity: 100 }),
    mediaServer('eu-b', 'eu-west-1'),
    mediaServer('eu-c', 'eu-west-1'),
    mediaServer('ap-1', 'ap-southeast-1'),
  ];
  const regions = [{ region: 'us-east-1' }, { region: 'eu-west-1' }, { region: 'ap-southeast-1' }];
  const failed = (roomId: string) => ({
    roomId,
    fromRegion: 'us-east-1',
    fromServerId: 'us-0',
    serverFailed: true,
  });

  it("lands on the same server whichever region's LB takes the room over", () => {
    const snap = snapshot(fleet, regions);
    const exclude = { serverIds: new Set(['us-0']), regions: new Set<string>() };
    for (const roomId of ['r1', 'r2', 'r3', 'standup', 'x'.repeat(64)]) {
      const choices = ['us-east-1', 'eu-west-1', 'ap-southeast-1'].map(
        (region) => chooseServer(snap, ctx({ region, exclude }), failed(roomId))?.id,
      );
      expect(new Set(choices).size).toBe(1);
      // The nearest other region to the failed one, whatever the load there.
      expect(choices[0]).toMatch(/^eu-/);
    }
  });

  it('spreads taken-over rooms over the servers of the chosen region', () => {
    const snap = snapshot(fleet, regions);
    const picks = new Set(
      Array.from({ length: 50 }, (_, i) => chooseServer(snap, ctx(), failed(`room-${i}`))?.id),
    );
    expect(picks).toEqual(new Set(['eu-a', 'eu-b', 'eu-c']));
  });

  it('keeps a room in its region when its server died of old age rather than at the caller', () => {
    const snap = snapshot(fleet, regions);
    expect(
      chooseServer(snap, ctx(), {
        roomId: 'r1',
        fromRegion: 'us-east-1',
        fromServerId: 'us-0',
        serverFailed: false,
      })?.id,
    ).toBe('us-1');
    // ...and sends it back there only when no other region has capacity.
    const onlyUs = snapshot([mediaServer('us-1', 'us-east-1')], regions);
    expect(chooseServer(onlyUs, ctx(), failed('r1'))?.id).toBe('us-1');
  });

  it("ignores the callers' exclusions: clients excluding different things still land together", () => {
    const snap = snapshot(fleet, regions);
    for (const roomId of ['r1', 'r2', 'standup']) {
      const plain = chooseServer(snap, ctx(), failed(roomId))?.id;
      const exclude = { serverIds: new Set([plain!]), regions: new Set(['eu-west-1']) };
      expect(chooseServer(snap, ctx({ exclude }), failed(roomId))?.id).toBe(plain);
    }
  });

  it('never hands the room back to the server it is taken from', () => {
    const snap = snapshot([mediaServer('us-0', 'us-east-1'), mediaServer('us-1', 'us-east-1')], regions);
    expect(chooseServer(snap, ctx(), { ...failed('r1'), serverFailed: false })?.id).toBe('us-1');
  });

  it('skips full servers', () => {
    const snap = snapshot(
      [
        mediaServer('eu-full', 'eu-west-1', { load: 100, capacity: 100 }),
        mediaServer('ap-1', 'ap-southeast-1'),
      ],
      regions,
    );
    expect(chooseServer(snap, ctx(), failed('r1'))?.id).toBe('ap-1');
  });
});

describe('chooseAlternates', () => {
  const regions = ['us-east-1', 'us-west-2', 'ap-southeast-1', 'eu-central-1', 'sa-east-1'].map((region) => ({
    region,
  }));
  const own = { region: 'eu-west-1', publicApiUrl: 'https://eu-west-1.api.example.com' };

  it('keeps at most three, nearest first, never the serving region', () => {
    const alts = chooseAlternates(snapshot([], regions), {
      own,
      servingRegion: 'eu-west-1',
      excludedRegions: new Set(),
    });
    expect(alts.map((a) => a.region)).toEqual(['eu-central-1', 'us-east-1', 'us-west-2']);
    expect(alts[0]).toEqual({ region: 'eu-central-1', apiUrl: 'https://eu-central-1.api.example.com' });
  });

  it("follows the client's RTTs when it sent them", () => {
    const alts = chooseAlternates(snapshot([], regions), {
      own,
      servingRegion: 'eu-west-1',
      excludedRegions: new Set(),
      rtt: { 'sa-east-1': 30, 'ap-southeast-1': 10 },
    });
    expect(alts.map((a) => a.region)).toEqual(['ap-southeast-1', 'sa-east-1', 'eu-central-1']);
  });
});

describe('signaling URLs', () => {
  it('turns the region API URL into a ws(s) URL without the token (it travels as a subprotocol)', () => {
    expect(signalingUrl('https://eu-west-1.api.example.com', 'r.1')).toBe(
      'wss://eu-west-1.api.example.com/v1/rooms/r.1/signal',
    );
    expect(signalingUrl('http://127.0.2.1:8080/?x=1', 'r')).toBe('ws://127.0.2.1:8080/v1/rooms/r/signal');
    expect(upstreamSignalingUrl('ws://10.0.1.5:7000', 'r', 't')).toBe(
      'ws://10.0.1.5:7000/v1/rooms/r/signal?token=t',
    );
  });
});
