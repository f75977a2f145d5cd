/**
 * `/health` and `/v1/regions` are public and unauthenticated: Route 53 probes them, and so can anyone.
 * A flood of probes must cost the table no more than the LB's own background view does (one refresh per
 * `healthCacheMs`), so it can neither throttle the region's items nor flip the region's health.
 */
import { join, mediaServer, startLb, type LbHarness } from '../runtime/lb/lbHarness';

let h: LbHarness;

beforeAll(async () => {
  h = await startLb({
    config: { limits: { healthProbesPerMinute: 1e9, requestsPerMinute: 1e9 } },
  });
  await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
  await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
  await h.admin.regions.putSummary({
    region: 'us-east-1',
    apiUrl: 'http://127.0.1.1:8080',
    liveServers: 1,
    load: 0,
    capacity: 100,
    reportedAt: h.clock.now(),
  });
});

afterAll(async () => {
  await h?.close();
});

test('600 probes over three seconds cost the table at most one view refresh per second', async () => {
  // One refresh: the region list, then the servers of each known region (eu-west-1 and us-east-1).
  await h.app.fleet.refresh();
  h.commands.length = 0;
  const answers: number[] = [];
  for (let tick = 0; tick < 30; tick++) {
    h.clock.advance(100);
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h.app.inject({ method: 'GET', url: i % 2 ? '/health' : '/v1/regions' }),
      ),
    );
    answers.push(...burst.map((r) => r.statusCode));
  }
  expect(new Set(answers)).toEqual(new Set([200]));
  const refreshes = h.commands.filter((c) => c === 'QueryCommand').length / 3;
  // Three simulated seconds at one refresh per healthCacheMs (1 s): three, four at a boundary.
  expect(refreshes).toBeLessThanOrEqual(4);
  expect(h.commands.filter((c) => c !== 'QueryCommand')).toEqual([]);
});

test('the shared view still turns health within a second of an evacuation', async () => {
  expect((await h.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  await h.admin.regions.setStatus('eu-west-1', 'evacuated', 'drill');
  h.clock.advance(1_000);
  const res = await h.app.inject({ method: 'GET', url: '/health' });
  expect(res.statusCode).toBe(503);
  expect(res.json().reasons).toEqual(['region_evacuated']);
  const regions = (await h.app.inject({ method: 'GET', url: '/v1/regions' })).json();
  expect(regions.regions.find((r: { region: string }) => r.region === 'eu-west-1').status).toBe('evacuated');
  // Joins keep working for other regions' rooms meanwhile: the view is shared, not a lock.
  expect((await join(h, 'after-evacuation')).statusCode).toBe(200);
});
