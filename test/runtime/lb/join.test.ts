import { parseKeySet, verifyMediaToken } from '../../../runtime/protocol/tokens';
import { turnPassword } from '../../../runtime/lb/turnCredentials';
import { DEFAULT_SERVER_LIVENESS_MS } from '../../../runtime/store';
import { OWN_REGION_RECHECK_MS } from '../../../runtime/lb/Placement';
import {
  join,
  joinToken,
  mediaServer,
  scanTable,
  startLb,
  T0,
  MEDIA_KEYS,
  type LbHarness,
} from './lbHarness';

const US = 'http://127.0.1.1:8080';
const AP = 'http://127.0.3.1:8080';

let h: LbHarness;

async function summary(region: string, apiUrl: string) {
  await h.admin.regions.putSummary({
    region,
    apiUrl,
    liveServers: 1,
    load: 0,
    capacity: 100,
    reportedAt: T0,
  });
}

beforeEach(async () => {
  h = await startLb({ region: 'eu-west-1' });
  await summary('us-east-1', US);
  await summary('ap-southeast-1', AP);
});

afterEach(async () => {
  await h.close();
});

describe('placement of a fresh room', () => {
  it('places it on the least-loaded live, active server of this region and answers the fixed shape', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 50 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 10 }));
    await h.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 100 }));
    await h.admin.servers.put(mediaServer('eu-draining', 'eu-west-1', { status: 'draining' }));
    await h.admin.servers.put(
      mediaServer('eu-dead', 'eu-west-1', { heartbeatAt: T0 - DEFAULT_SERVER_LIVENESS_MS - 1 }),
    );
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.app.fleet.refresh();

    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(
      ['alternates', 'expiresAt', 'mediaToken', 'region', 'room', 'serverId', 'signalingUrl'].sort(),
    );
    expect(body).toMatchObject({ room: 'r1', region: 'eu-west-1', serverId: 'eu-b' });
    // The token is not in the URL: the client presents it as a WebSocket subprotocol.
    expect(body.signalingUrl).toBe('ws://127.0.0.1:8080/v1/rooms/r1/signal');
    const claims = await verifyMediaToken(MEDIA_KEYS, body.mediaToken, { roomId: 'r1', serverId: 'eu-b' });
    expect(claims.identity).toBe('alice');
    expect(body.expiresAt).toBe(claims.exp * 1000);
    // No RTTs reported: alternates by distance from eu-west-1.
    expect(body.alternates).toEqual([
      { region: 'us-east-1', apiUrl: US },
      { region: 'ap-southeast-1', apiUrl: AP },
    ]);
    expect(await h.admin.rooms.get('r1')).toMatchObject({
      serverId: 'eu-b',
      region: 'eu-west-1',
      version: 1,
    });
  });

  it('gives each join its own peer id', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    const a = (await join(h, 'r1')).json();
    const b = (await join(h, 'r1')).json();
    const pa = await verifyMediaToken(MEDIA_KEYS, a.mediaToken, { roomId: 'r1' });
    const pb = await verifyMediaToken(MEDIA_KEYS, b.mediaToken, { roomId: 'r1' });
    expect(pa.sub).not.toBe(pb.sub);
  });

  it("orders alternates by the client's RTTs, unmeasured regions last, and skips excluded regions", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.regions.putSummary({
      region: 'eu-central-1',
      apiUrl: 'http://127.0.4.1:8080',
      liveServers: 0,
      load: 0,
      capacity: 0,
      reportedAt: T0,
    });
    await h.app.fleet.refresh();
    const res = await join(h, 'r1', { body: { rtt: { 'ap-southeast-1': 20, 'us-east-1': 90 } } });
    expect(res.json().alternates.map((a: { region: string }) => a.region)).toEqual([
      'ap-southeast-1',
      'us-east-1',
      'eu-central-1',
    ]);
    const excluded = await join(h, 'r2', { body: { exclude: { regions: ['us-east-1'] } } });
    expect(excluded.json().alternates.map((a: { region: string }) => a.region)).toEqual([
      'eu-central-1',
      'ap-southeast-1',
    ]);
  });

  it('falls back to the nearest other region when this one has no capacity', async () => {
    await h.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 100, capacity: 100 }));
    await h.admin.servers.put(mediaServer('ap-a', 'ap-southeast-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1', { load: 90 }));
    await h.app.fleet.refresh();
    const body = (await join(h, 'r1')).json();
    expect(body).toMatchObject({ region: 'us-east-1', serverId: 'us-a' });
    expect(body.signalingUrl).toBe('ws://127.0.1.1:8080/v1/rooms/r1/signal');
    // The serving region is not its own alternate; this region (nearest the client, who reached it) is first.
    expect(body.alternates.map((a: { region: string }) => a.region)).toEqual(['eu-west-1', 'ap-southeast-1']);
  });

  it("reads the fleet again before sending this region's peers abroad, so a server that just came back takes them", async () => {
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.app.fleet.refresh();
    // This region's server registers after the snapshot; the snapshot is young enough for the cache.
    await h.admin.servers.put(mediaServer('eu-back', 'eu-west-1'));
    h.clock.advance(OWN_REGION_RECHECK_MS);
    const before = h.commands.length;
    expect((await join(h, 'r1')).json()).toMatchObject({ region: 'eu-west-1', serverId: 'eu-back' });
    expect(h.commands.slice(before)).toContain('QueryCommand');
    // Not on every join: with a fresh snapshot that shows no server here, the peer goes abroad at once.
    await h.admin.servers.put(mediaServer('eu-back', 'eu-west-1', { status: 'draining' }));
    await h.app.fleet.refresh();
    const reads = h.commands.length;
    expect((await join(h, 'r2')).json()).toMatchObject({ region: 'us-east-1', serverId: 'us-a' });
    expect(h.commands.slice(reads).filter((c) => c === 'ScanCommand' || c === 'QueryCommand')).toEqual([]);
  });

  it('places rooms elsewhere when this region is evacuated, or excluded by the client', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.app.fleet.refresh();
    expect((await join(h, 'r1', { body: { exclude: { regions: ['eu-west-1'] } } })).json().serverId).toBe(
      'us-a',
    );
    await h.admin.regions.setStatus('eu-west-1', 'evacuated', 'drill');
    await h.app.fleet.refresh();
    expect((await join(h, 'r2')).json().serverId).toBe('us-a');
  });

  it('skips regions whose LB never reported a public URL', async () => {
    await h.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 100 }));
    await h.admin.servers.put(mediaServer('sa-a', 'sa-east-1'));
    await h.admin.regions.setStatus('sa-east-1', 'active', 'known, but no LB summary yet');
    await h.app.fleet.refresh();
    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(503);
  });
});

describe('placement of an assigned room', () => {
  it('answers the live server of the room without writing, even in another region when this one has no server', async () => {
    await h.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 100 }));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1', { load: 99 }));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.app.fleet.refresh();
    const before = await scanTable(h);
    const body = (await join(h, 'r1')).json();
    expect(body).toMatchObject({ region: 'us-east-1', serverId: 'us-a' });
    expect(body.signalingUrl).toBe('ws://127.0.1.1:8080/v1/rooms/r1/signal');
    expect(await scanTable(h)).toEqual(before);
  });

  it('takes the room over from a server whose heartbeat went stale (version bumped)', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'eu-a', region: 'eu-west-1' });
    await h.app.fleet.refresh();
    h.clock.advance(DEFAULT_SERVER_LIVENESS_MS + 1);
    // eu-b registered after eu-a's last beat; the cache is now older than its max age and refreshes itself.
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { heartbeatAt: h.clock.now() }));
    const body = (await join(h, 'r1')).json();
    expect(body.serverId).toBe('eu-b');
    expect(await h.admin.rooms.get('r1')).toMatchObject({ serverId: 'eu-b', version: 2, createdAt: T0 });
  });

  it('takes the room over from an evacuated region', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.admin.regions.setStatus('us-east-1', 'evacuated', 'region failure drill');
    await h.app.fleet.refresh();
    const body = (await join(h, 'r1')).json();
    expect(body).toMatchObject({ region: 'eu-west-1', serverId: 'eu-a' });
    expect(body.alternates.map((a: { region: string }) => a.region)).toEqual(['ap-southeast-1']);
    expect(await h.admin.rooms.get('r1')).toMatchObject({
      serverId: 'eu-a',
      region: 'eu-west-1',
      version: 2,
    });
  });

  it('takes the room over from a server the rejoining client excludes, and from a draining one', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 50 }));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'eu-a', region: 'eu-west-1' });
    await h.app.fleet.refresh();
    expect((await join(h, 'r1', { body: { exclude: { serverIds: ['eu-a'] } } })).json().serverId).toBe(
      'eu-b',
    );
    await h.admin.servers.setStatus('eu-b', 'draining');
    await h.app.fleet.refresh();
    expect((await join(h, 'r1')).json().serverId).toBe('eu-a');
    expect((await h.admin.rooms.get('r1'))!.version).toBe(3);
  });
});

describe('legs of a room that spans regions (cascading)', () => {
  it("places a peer on its own region's leg, written as a leg item, and later peers of the region join it", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 40 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 60 }));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.app.fleet.refresh();
    const first = (await join(h, 'r1')).json();
    expect(first).toMatchObject({ region: 'eu-west-1' });
    const leg = await h.admin.legs.get('r1', 'eu-west-1');
    expect(leg).toMatchObject({ serverId: first.serverId, version: 1 });
    // The room item is another region's and stays untouched.
    expect(await h.admin.rooms.get('r1')).toMatchObject({
      serverId: 'us-a',
      region: 'us-east-1',
      version: 1,
    });
    const before = await scanTable(h);
    for (let i = 0; i < 3; i++) expect((await join(h, 'r1')).json().serverId).toBe(first.serverId);
    expect(await scanTable(h)).toEqual(before);
  });

  it("takes a dead leg over within its region, never out of it, and the room item's region never moves", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.admin.legs.place({ roomId: 'r1', region: 'eu-west-1', serverId: 'eu-a' });
    await h.app.fleet.refresh();
    h.clock.advance(DEFAULT_SERVER_LIVENESS_MS + 1);
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { heartbeatAt: h.clock.now() }));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1', { heartbeatAt: h.clock.now() }));
    const body = (await join(h, 'r1')).json();
    expect(body).toMatchObject({ region: 'eu-west-1', serverId: 'eu-b' });
    expect(await h.admin.legs.get('r1', 'eu-west-1')).toMatchObject({ serverId: 'eu-b', version: 2 });
    expect(await h.admin.rooms.get('r1')).toMatchObject({ serverId: 'us-a', version: 1 });
  });

  it("moves a draining server's leg within its region and leaves the other legs alone", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 50 }));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.servers.put(mediaServer('ap-a', 'ap-southeast-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.admin.legs.place({ roomId: 'r1', region: 'eu-west-1', serverId: 'eu-a' });
    await h.admin.legs.place({ roomId: 'r1', region: 'ap-southeast-1', serverId: 'ap-a' });
    await h.admin.servers.setStatus('eu-a', 'draining');
    await h.app.fleet.refresh();
    expect((await join(h, 'r1')).json()).toMatchObject({ region: 'eu-west-1', serverId: 'eu-b' });
    const legs = await h.admin.legs.ofRoom('r1');
    expect(Object.fromEntries([...legs.legs].map(([r, l]) => [r, [l.serverId, l.version]]))).toEqual({
      'us-east-1': ['us-a', 1],
      'eu-west-1': ['eu-b', 2],
      'ap-southeast-1': ['ap-a', 1],
    });
  });

  it("sends the peer to the room item's server when this region is excluded by the caller or draining", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.app.fleet.refresh();
    const excluded = (await join(h, 'r1', { body: { exclude: { regions: ['eu-west-1'] } } })).json();
    expect(excluded).toMatchObject({ region: 'us-east-1', serverId: 'us-a' });
    await h.admin.servers.setStatus('eu-a', 'draining');
    await h.app.fleet.refresh();
    expect((await join(h, 'r1')).json()).toMatchObject({ region: 'us-east-1', serverId: 'us-a' });
    expect(await h.admin.legs.get('r1', 'eu-west-1')).toBeNull();
  });
});

describe('races', () => {
  /** Writes `winner` for the room through another client just before the app's own placement write. */
  function raceBeforePlacement(roomId: string, winner: { serverId: string; region: string }) {
    let fired = false;
    h.store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (
          !fired &&
          (context.commandName === 'PutItemCommand' || context.commandName === 'UpdateItemCommand')
        ) {
          fired = true;
          const room = await h.admin.rooms.get(roomId);
          await h.admin.rooms.place({ roomId, ...winner, expectedVersion: room?.version });
        }
        return next(args);
      },
      { step: 'initialize', name: 'racer' },
    );
  }

  it('answers the winner when another LB placed the room first', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 90 }));
    await h.app.fleet.refresh();
    raceBeforePlacement('r1', { serverId: 'eu-b', region: 'eu-west-1' });
    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(200);
    expect(res.json().serverId).toBe('eu-b');
    expect(await h.admin.rooms.get('r1')).toMatchObject({ serverId: 'eu-b', version: 1 });
    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/lb_joins_total\{outcome="lost_race",region="eu-west-1"\} 1/);
  });

  it("retries once when the winner's server is dead", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(
      mediaServer('eu-dead', 'eu-west-1', { heartbeatAt: T0 - DEFAULT_SERVER_LIVENESS_MS - 1 }),
    );
    await h.app.fleet.refresh();
    raceBeforePlacement('r1', { serverId: 'eu-dead', region: 'eu-west-1' });
    const res = await join(h, 'r1');
    expect(res.json().serverId).toBe('eu-a');
    expect(await h.admin.rooms.get('r1')).toMatchObject({ serverId: 'eu-a', version: 2 });
  });
});

describe('no capacity', () => {
  it('answers a clear 503 and writes nothing when no region has room', async () => {
    await h.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 10, capacity: 10 }));
    await h.admin.servers.put(mediaServer('us-dead', 'us-east-1', { heartbeatAt: T0 - 60_000 }));
    await h.admin.servers.put(mediaServer('ap-draining', 'ap-southeast-1', { status: 'draining' }));
    await h.app.fleet.refresh();
    const before = await scanTable(h);
    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: { code: 'no_capacity', message: expect.stringMatching(/capacity/) },
    });
    expect(await scanTable(h)).toEqual(before);
  });

  it('refuses a join into a room whose live server is full (503 server_full, Retry-After), moving nothing', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 100, capacity: 100 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'eu-a', region: 'eu-west-1' });
    await h.app.fleet.refresh();
    const before = await scanTable(h);
    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toEqual({
      error: { code: 'server_full', message: 'the media server of room "r1" is full; retry shortly' },
    });
    expect(await scanTable(h)).toEqual(before);
    // A fresh room still goes to the server with room to spare.
    expect((await join(h, 'r2')).json().serverId).toBe('eu-b');
  });

  it("refuses a join into this region's leg when the leg's server is full, and leaves the legs alone", async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 100, capacity: 100 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.rooms.place({ roomId: 'r1', serverId: 'us-a', region: 'us-east-1' });
    await h.admin.legs.place({ roomId: 'r1', region: 'eu-west-1', serverId: 'eu-a' });
    await h.app.fleet.refresh();
    const before = await scanTable(h);
    const res = await join(h, 'r1');
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('server_full');
    expect(await scanTable(h)).toEqual(before);
  });
});

describe('cost of the warm path', () => {
  it('makes at most two DynamoDB requests per join (one read, plus one write when placing)', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    const token = await joinToken('warm');

    h.commands.length = 0;
    expect((await join(h, 'warm', { token })).statusCode).toBe(200);
    expect(h.commands).toEqual(['GetItemCommand', 'PutItemCommand']);

    h.commands.length = 0;
    expect((await join(h, 'warm', { token })).statusCode).toBe(200);
    expect(h.commands).toEqual(['GetItemCommand']);
  });
});

describe('TURN relay in the answer', () => {
  const TURN_DOC = {
    kid: 't2',
    secret: 'current-turn-secret-0123456789abcdef01',
    verify: [{ kid: 't1', secret: 'previous-turn-secret-0123456789abcdef0' }],
  };
  let t: LbHarness;

  beforeEach(async () => {
    t = await startLb({
      region: 'eu-west-1',
      dynamo: h.dynamo,
      config: {
        publicApiUrl: 'https://eu-west-1.api.example.com',
        turn: {
          secret: parseKeySet(TURN_DOC),
          hostPrefix: 'turn.',
          port: 3478,
          tlsPort: 443,
          ttlSeconds: 3600,
        },
      },
    });
  });

  afterEach(async () => {
    await t.close();
  });

  it("carries the serving region's relay URLs and a credential bound to the peer, signed with the current secret", async () => {
    await t.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await t.app.fleet.refresh();
    const before = Math.floor(Date.now() / 1000);
    const res = await join(t, 'turn-room');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.iceServers).toHaveLength(1);
    const [server] = body.iceServers;
    expect(server.urls).toEqual([
      'turn:turn.eu-west-1.api.example.com:3478?transport=udp',
      'turn:turn.eu-west-1.api.example.com:3478?transport=tcp',
      'turns:turn.eu-west-1.api.example.com:443?transport=tcp',
    ]);
    const claims = await verifyMediaToken(MEDIA_KEYS, body.mediaToken, {
      roomId: 'turn-room',
      serverId: 'eu-a',
    });
    const [expiry, peerId] = server.username.split(':');
    expect(peerId).toBe(claims.sub);
    expect(Number(expiry) - before).toBeGreaterThanOrEqual(3600);
    expect(Number(expiry) - before).toBeLessThanOrEqual(3601);
    expect(server.credential).toBe(turnPassword(TURN_DOC.secret, server.username));
    expect(server.credential).not.toBe(turnPassword(TURN_DOC.verify[0]!.secret, server.username));
    // Each join its own credential.
    const again = (await join(t, 'turn-room')).json();
    expect(again.iceServers[0].username).not.toBe(server.username);
  });

  it("points at another region's relay when that region serves the peer", async () => {
    await t.admin.regions.putSummary({
      region: 'us-east-1',
      apiUrl: 'https://us-east-1.api.example.com',
      liveServers: 1,
      load: 0,
      capacity: 100,
      reportedAt: T0,
    });
    await t.admin.servers.put(mediaServer('eu-full', 'eu-west-1', { load: 100, capacity: 100 }));
    await t.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await t.app.fleet.refresh();
    const body = (await join(t, 'turn-elsewhere')).json();
    expect(body.region).toBe('us-east-1');
    expect(body.iceServers[0].urls[0]).toBe('turn:turn.us-east-1.api.example.com:3478?transport=udp');
  });

  it('carries no iceServers when the LB has no TURN secret', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    expect((await join(h, 'no-turn')).json().iceServers).toBeUndefined();
  });
});
