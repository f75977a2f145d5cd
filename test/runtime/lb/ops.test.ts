import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { DEFAULT_SERVER_LIVENESS_MS } from '../../../runtime/store';
import { join, joinToken, mediaServer, startLb, T0, type LbHarness } from './lbHarness';

describe('GET /health', () => {
  let h: LbHarness;
  beforeEach(async () => {
    // No cache age: every probe below must see the table as it is now (the cache has its own test).
    // A deadline no loaded machine's first table read misses (a full run once saw db_timeout at 400 ms):
    // these tests are about the reasons; the deadline has its own test below.
    h = await startLb({ config: { healthDeadlineMs: 5_000, healthCacheMs: 0 } });
  });
  afterEach(async () => {
    await h.close();
  });

  const health = () => h.app.inject({ method: 'GET', url: '/health' });

  it('is 503 with no live media server, 200 once one heartbeats', async () => {
    const res = await health();
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'unhealthy',
      region: 'eu-west-1',
      reasons: ['no_live_media_servers'],
      liveServers: 0,
      regionStatus: 'active',
    });
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    const ok = await health();
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'ok', reasons: [], liveServers: 1 });
    expect(ok.headers['cache-control']).toBe('no-store');
  });

  it('turns 503 on the first probe after the last media server expires', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { heartbeatAt: T0 + 3_000 }));
    expect((await health()).statusCode).toBe(200);
    h.clock.advance(DEFAULT_SERVER_LIVENESS_MS);
    expect((await health()).json().liveServers).toBe(1);
    h.clock.advance(3_000);
    const res = await health();
    expect(res.statusCode).toBe(503);
    expect(res.json().reasons).toEqual(['no_live_media_servers']);
  });

  it('does not count draining servers: they take no new rooms', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { status: 'draining' }));
    expect((await health()).statusCode).toBe(503);
  });

  it('turns 503 on the first probe after the region is evacuated, 200 after restore', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    // Warm the fleet cache first: health must not answer from a view older than healthCacheMs.
    await h.app.fleet.refresh();
    expect((await health()).statusCode).toBe(200);
    await h.admin.regions.setStatus('eu-west-1', 'evacuated', 'drill');
    const res = await health();
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ reasons: ['region_evacuated'], regionStatus: 'evacuated' });
    await h.admin.regions.setStatus('eu-west-1', 'active', 'restored');
    expect((await health()).statusCode).toBe(200);
  });

  it('reports every failing reason at once', async () => {
    await h.admin.regions.setStatus('eu-west-1', 'evacuated', 'drill');
    expect((await health()).json().reasons).toEqual(['region_evacuated', 'no_live_media_servers']);
  });
});

describe('GET /health when the replica fails', () => {
  it('is 503 db_unavailable when the replica refuses connections', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const h = await startLb({ storeOptions: { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 } });
    try {
      const res = await h.app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ reasons: ['db_unavailable'], liveServers: null });
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/lb_db_errors_total\{kind="unavailable",region="eu-west-1"\} [1-9]/);
    } finally {
      await h.close();
    }
  });

  it('is 503 db_timeout within its deadline when the replica hangs', async () => {
    const sockets = new Set<net.Socket>();
    // Accepts connections and never answers: the worst kind of dead replica.
    const blackhole = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
    const h = await startLb({
      config: { healthDeadlineMs: 300 },
      storeOptions: { endpoint, maxAttempts: 1 },
    });
    try {
      const res = await h.app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(res.json().reasons).toEqual(['db_timeout']);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
      await h.close();
    }
  });
});

describe('region registry, ping, metrics and the edges of the API', () => {
  let h: LbHarness;
  beforeAll(async () => {
    h = await startLb({
      config: {
        corsOrigins: ['http://127.0.0.1:3000'],
        limits: { joinsPerMinute: 3, requestsPerMinute: 8 },
      },
    });
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { load: 10, capacity: 100 }));
    await h.admin.servers.put(mediaServer('eu-b', 'eu-west-1', { load: 5, capacity: 50 }));
    await h.admin.servers.put(mediaServer('eu-dead', 'eu-west-1', { heartbeatAt: 0 }));
    await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
    await h.admin.regions.putSummary({
      region: 'us-east-1',
      apiUrl: 'http://127.0.1.1:8080',
      liveServers: 1,
      load: 0,
      capacity: 100,
      reportedAt: T0,
    });
    await h.admin.regions.setStatus('us-east-1', 'evacuated', 'drill');
    await h.app.fleet.refresh();
  });
  afterAll(async () => {
    await h.close();
  });

  it("writes this region's summary from live, active servers", async () => {
    const summary = await h.app.regionReporter.report();
    expect(summary).toEqual({
      region: 'eu-west-1',
      apiUrl: 'http://127.0.0.1:8080',
      liveServers: 2,
      load: 15,
      capacity: 150,
      reportedAt: T0,
    });
    const views = await h.admin.regions.list();
    expect(views.find((v) => v.region === 'eu-west-1')?.summary).toEqual(summary);
    // The summary never touches the operator's status item.
    expect(views.find((v) => v.region === 'us-east-1')?.status).toBe('evacuated');
  });

  it('lists every region with status, URL and live servers', async () => {
    // The listing shares /health's view, at most healthCacheMs old: the summary above shows a second on.
    h.clock.advance(1_000);
    const res = await h.app.inject({ method: 'GET', url: '/v1/regions' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      region: 'eu-west-1',
      regions: [
        {
          region: 'eu-west-1',
          status: 'active',
          reason: '',
          apiUrl: 'http://127.0.0.1:8080',
          // No backup family in this deployment.
          backupApiUrl: null,
          liveServers: 2,
          load: 15,
          capacity: 150,
          reportedAt: T0,
        },
        {
          region: 'us-east-1',
          status: 'evacuated',
          reason: 'drill',
          apiUrl: 'http://127.0.1.1:8080',
          backupApiUrl: null,
          liveServers: 1,
          load: 0,
          capacity: 100,
          reportedAt: T0,
        },
      ],
    });
  });

  it('answers pings without touching the database', async () => {
    h.commands.length = 0;
    const res = await h.app.inject({ method: 'GET', url: '/v1/ping?t=123' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-region']).toBe('eu-west-1');
    expect(res.json()).toEqual({ region: 'eu-west-1' });
    expect(h.commands).toEqual([]);
  });

  it('sends CORS headers to the configured origin only, and helmet headers to everyone', async () => {
    const allowed = await h.app.inject({
      method: 'GET',
      url: '/v1/ping',
      headers: { origin: 'http://127.0.0.1:3000' },
    });
    expect(allowed.headers['access-control-allow-origin']).toBe('http://127.0.0.1:3000');
    expect(allowed.headers['x-content-type-options']).toBe('nosniff');
    const other = await h.app.inject({
      method: 'GET',
      url: '/v1/ping',
      headers: { origin: 'http://evil.test' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('exposes Prometheus metrics', async () => {
    await join(h, 'metrics-room');
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/lb_joins_total\{outcome="placed",region="eu-west-1"\} 1/);
    expect(res.body).toMatch(/lb_placement_duration_seconds_count\{region="eu-west-1"\} 1/);
    expect(res.body).toMatch(/lb_relays_open\{region="eu-west-1"\} 0/);
  });

  it('rate-limits joins by token subject, and unknown routes by address', async () => {
    const results: number[] = [];
    for (let i = 0; i < 4; i++)
      results.push((await join(h, 'busy', { token: await joinToken('busy', 'bob') })).statusCode);
    expect(results).toEqual([200, 200, 200, 429]);
    const limited = await join(h, 'busy', { token: await joinToken('busy', 'bob') });
    expect(limited.json().error.code).toBe('rate_limited');
    // Another subject has its own budget.
    expect((await join(h, 'busy', { token: await joinToken('busy', 'carol') })).statusCode).toBe(200);

    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await h.app.inject({ method: 'GET', url: `/nope/${i}` })).statusCode);
    expect(statuses.slice(0, 3)).toEqual([404, 404, 404]);
    expect(statuses.at(-1)).toBe(429);
    const notFound = await h.app.inject({ method: 'GET', url: '/nope', remoteAddress: '127.0.0.9' });
    expect(notFound.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /nope' } });
  });
});

describe('every answer names its region', () => {
  let h: LbHarness;
  beforeAll(async () => {
    h = await startLb();
  });
  afterAll(async () => {
    await h.close();
  });

  it('names its region on every answer: joins, refusals and unknown routes alike', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    const answers = [
      await join(h, 'named-room'),
      await join(h, 'named-room', { token: null }),
      await join(h, 'named-room', { body: { exclude: { regions: ['not a region'] } } }),
      await h.app.inject({ method: 'GET', url: '/no/such/route' }),
      await h.app.inject({ method: 'GET', url: '/health' }),
    ];
    expect(answers.map((a) => a.statusCode)).toEqual([200, 401, 400, 404, 200]);
    for (const answer of answers) expect(answer.headers['x-region']).toBe('eu-west-1');
  });
});
