import { nodePlatform } from '../../../runtime/client/nodePlatform';
import type { Platform } from '../../../runtime/client/platform';
import { RttElection } from '../../../runtime/client/RttElection';
import { type TestHttpServer, json, refusedUrl, startHttpServer } from './httpServers';

/** A region whose /v1/ping answers after `delay.ms`. */
async function regionAnswering(delay: { ms: number }): Promise<TestHttpServer> {
  return startHttpServer((_req, _body, res) => {
    setTimeout(() => json(res, 200, {}), delay.ms);
  });
}

describe('RTT election', () => {
  let platform: Platform;
  const servers: TestHttpServer[] = [];
  const elections: RttElection[] = [];

  beforeEach(() => {
    platform = nodePlatform({});
  });
  afterEach(async () => {
    elections.splice(0).forEach((e) => e.close());
    platform.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  const config = { samples: 3, recheckMs: 60_000, degradedFactor: 2, degradedMarginMs: 50 };

  it('ranks regions by median RTT, unreachable last, and reports only measured ones', async () => {
    const near = { ms: 0 };
    const mid = { ms: 120 };
    const far = { ms: 300 };
    const [a, b, c] = await Promise.all([regionAnswering(far), regionAnswering(near), regionAnswering(mid)]);
    servers.push(a!, b!, c!);
    const dead = await refusedUrl();
    const election = new RttElection({
      http: platform.http,
      regionUrls: { 'ap-southeast-1': a!.url, 'us-east-1': dead, 'eu-west-1': b!.url, 'sa-east-1': c!.url },
      ...config,
      probeTimeoutMs: 2_000,
    });
    elections.push(election);
    const ranking = await election.elect('initial');
    expect(ranking.map((r) => r.region)).toEqual(['eu-west-1', 'sa-east-1', 'ap-southeast-1', 'us-east-1']);
    expect(ranking[3]).toMatchObject({ rttMs: null, failures: 3, samples: [] });
    expect(ranking[0]!.samples).toHaveLength(3);
    const report = election.rttReport()!;
    expect(Object.keys(report)).toEqual(['eu-west-1', 'sa-east-1', 'ap-southeast-1']);
    expect(report['ap-southeast-1']).toBeGreaterThanOrEqual(300);
    // Each region was probed `samples` times, one at a time.
    expect(a!.hits).toEqual(['GET /v1/ping', 'GET /v1/ping', 'GET /v1/ping']);
  });

  it('a slow outlier does not decide the ranking (median of samples)', async () => {
    let calls = 0;
    const spiky = await startHttpServer((_req, _body, res) => {
      // First probe pays a one-off 400 ms stall, then the region is fast.
      setTimeout(() => json(res, 200, {}), calls++ === 0 ? 400 : 0);
    });
    const steady = await regionAnswering({ ms: 100 });
    servers.push(spiky, steady);
    const election = new RttElection({
      http: platform.http,
      regionUrls: { spiky: spiky.url, steady: steady.url },
      ...config,
      probeTimeoutMs: 2_000,
    });
    elections.push(election);
    const ranking = await election.elect();
    expect(ranking.map((r) => r.region)).toEqual(['spiky', 'steady']);
  });

  it('re-elects when the watched region degrades', async () => {
    const first = { ms: 0 };
    const second = { ms: 100 };
    const [a, b] = await Promise.all([regionAnswering(first), regionAnswering(second)]);
    servers.push(a!, b!);
    const election = new RttElection({
      http: platform.http,
      regionUrls: { 'eu-west-1': a!.url, 'us-east-1': b!.url },
      ...config,
      samples: 1,
      recheckMs: 30,
      probeTimeoutMs: 2_000,
    });
    elections.push(election);
    expect((await election.elect('initial')).map((r) => r.region)).toEqual(['eu-west-1', 'us-east-1']);
    election.watch('eu-west-1');
    first.ms = 400;
    const degraded = await election.next('degraded');
    expect(degraded.region).toBe('eu-west-1');
    expect(degraded.rttMs).toBeGreaterThanOrEqual(400);
    const { ranking, reason } = await election.next('elected');
    expect(reason).toBe('degraded');
    expect(ranking.map((r) => r.region)).toEqual(['us-east-1', 'eu-west-1']);
  });

  it('re-elects when the watched region stops answering', async () => {
    const alive = await regionAnswering({ ms: 0 });
    servers.push(alive);
    let up = true;
    const flaky = await startHttpServer((_req, _body, res) => (up ? json(res, 200, {}) : json(res, 503, {})));
    servers.push(flaky);
    const election = new RttElection({
      http: platform.http,
      regionUrls: { flaky: flaky.url, alive: alive.url },
      ...config,
      samples: 1,
      recheckMs: 30,
      probeTimeoutMs: 2_000,
    });
    elections.push(election);
    await election.elect('initial');
    election.watch('flaky');
    up = false;
    expect(await election.next('degraded')).toMatchObject({ region: 'flaky', rttMs: null });
    const { ranking } = await election.next('elected');
    expect(ranking[0]!.region).toBe('alive');
    expect(election.rttReport()).toEqual({ alive: expect.any(Number) });
  });
});
