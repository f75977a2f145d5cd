import { ApiClient, type ServedEvent, type SwitchedEvent } from '../../../runtime/client/ApiClient';
import { ApiError, ApiUnavailableError } from '../../../runtime/client/errors';
import { nodePlatform } from '../../../runtime/client/nodePlatform';
import type { Platform } from '../../../runtime/client/platform';
import { type TestHttpServer, json, refusedUrl, sleep, startHttpServer } from './httpServers';

describe('ApiClient fallback', () => {
  let platform: Platform;
  const servers: TestHttpServer[] = [];
  const clients: ApiClient[] = [];

  beforeEach(() => {
    platform = nodePlatform({});
  });
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    platform.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  function client(
    apiUrls: string[],
    timeouts: Partial<{ attemptMs: number; hedgeMs: number; primaryReprobeMs: number }> = {},
  ) {
    // Hedging off unless a test turns it on: the sequential policy is tested on its own.
    const c = new ApiClient({
      http: platform.http,
      apiUrls,
      attemptMs: 2_000,
      hedgeMs: 60_000,
      primaryReprobeMs: 60_000,
      ...timeouts,
    });
    clients.push(c);
    return c;
  }

  async function server(handler: Parameters<typeof startHttpServer>[0]) {
    const s = await startHttpServer(handler);
    servers.push(s);
    return s;
  }

  it('reads a shed answer’s Retry-After (delta-seconds; a date or junk is ignored)', async () => {
    const shedding = (value: string) =>
      server((_q, _b, res) => {
        res.setHeader('retry-after', value);
        json(res, 503, { error: { code: 'overloaded', message: 'shedding joins' } });
      });
    const a = await shedding('2');
    const b = await shedding('Wed, 21 Oct 2015 07:28:00 GMT');
    const err = await client([a.url, b.url])
      .call('/v1/rooms/r/join', { body: {} })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    const unavailable = err as ApiUnavailableError;
    expect(unavailable.attempts.map((x) => [x.status, x.retryAfterMs])).toEqual([
      [503, 2_000],
      [503, undefined],
    ]);
    expect(unavailable.retryAfterMs).toBe(2_000);
  });

  it('uses the primary while it answers', async () => {
    const primary = await server((_q, _b, res) => json(res, 200, { from: 'primary' }));
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([primary.url, backup.url]);
    await expect(api.call('/v1/regions')).resolves.toEqual({ data: { from: 'primary' }, url: primary.url });
    expect(backup.hits).toEqual([]);
  });

  it('moves to the backup when the primary refuses connections, and reports every attempt', async () => {
    const dead = await refusedUrl();
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([dead, backup.url]);
    const served: ServedEvent[] = [];
    api.on('served', (e) => served.push(e));
    const answer = await api.call('/v1/regions');
    expect(answer).toEqual({ data: { from: 'backup' }, url: backup.url });
    expect(served).toHaveLength(1);
    expect(served[0]!.url).toBe(backup.url);
    expect(served[0]!.attempts.map((a) => [a.url, a.outcome])).toEqual([
      [dead, 'network_error'],
      [backup.url, 'ok'],
    ]);
  });

  it('moves to the backup at a 5xx', async () => {
    const primary = await server((_q, _b, res) =>
      json(res, 503, { error: { code: 'no_capacity', message: 'x' } }),
    );
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([primary.url, backup.url]);
    const answer = await api.call('/v1/rooms/r1/join', { body: {}, token: 't' });
    expect(answer.url).toBe(backup.url);
    expect(primary.hits).toEqual(['POST /v1/rooms/r1/join']);
  });

  it('never moves on at a 4xx: it surfaces the server error', async () => {
    const primary = await server((_q, _b, res) =>
      json(res, 401, { error: { code: 'token_expired', message: 'the join token expired' } }),
    );
    const backup = await server((_q, _b, res) => json(res, 200, {}));
    const api = client([primary.url, backup.url]);
    const err = await api.call('/v1/rooms/r1/join', { body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      status: 401,
      code: 'token_expired',
      message: expect.stringContaining('expired'),
      url: primary.url,
    });
    expect(backup.hits).toEqual([]);
  });

  it('sends the token, JSON body and method', async () => {
    let seen: { auth?: string; type?: string; body?: string; method?: string } = {};
    const primary = await server((req, body, res) => {
      seen = { auth: req.headers.authorization, type: req.headers['content-type'], body, method: req.method };
      json(res, 200, {});
    });
    await client([primary.url]).call('/v1/rooms/r1/join', {
      body: { rtt: { 'eu-west-1': 12 } },
      token: 'abc',
    });
    expect(seen).toEqual({
      auth: 'Bearer abc',
      type: 'application/json',
      body: JSON.stringify({ rtt: { 'eu-west-1': 12 } }),
      method: 'POST',
    });
  });

  it('moves on after attemptMs when a URL never answers', async () => {
    // Accepts the request and never answers: what a blackholed region behind a live socket looks like.
    const silent = await server(() => undefined);
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([silent.url, backup.url], { attemptMs: 300 });
    const started = Date.now();
    const answer = await api.call('/v1/ping');
    expect(answer.url).toBe(backup.url);
    // The logic under test: it gave up on the primary long before the default 3 s attempt timeout.
    expect(Date.now() - started).toBeLessThan(2_500);
    const served = await new Promise<ServedEvent>((resolve) => {
      api.once('served', resolve);
      void api.call('/v1/ping');
    });
    expect(served.attempts).toHaveLength(1);
  });

  it('hedges: a silent URL gets the next one started beside it after hedgeMs, and the first answer wins', async () => {
    const silent = await server(() => undefined);
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([silent.url, backup.url], { attemptMs: 20_000, hedgeMs: 100 });
    const served = new Promise<ServedEvent>((resolve) => api.once('served', resolve));
    const started = Date.now();
    await expect(api.call('/v1/ping')).resolves.toMatchObject({ url: backup.url, data: { from: 'backup' } });
    // Far inside the 20 s attempt timeout: the hedge, not the timeout, moved it on.
    expect(Date.now() - started).toBeLessThan(10_000);
    // The abandoned primary attempt never finished, so it is not reported as a failure.
    expect((await served).attempts.map((a) => [a.url, a.outcome])).toEqual([[backup.url, 'ok']]);
    expect(api.currentUrl).toBe(backup.url);
  });

  it('hedges without giving up on a slow URL that answers first', async () => {
    const slowPrimary = await server((_q, _b, res) =>
      setTimeout(() => json(res, 200, { from: 'primary' }), 300),
    );
    const slowerBackup = await server((_q, _b, res) =>
      setTimeout(() => json(res, 200, { from: 'backup' }), 3_000),
    );
    const api = client([slowPrimary.url, slowerBackup.url], { hedgeMs: 50 });
    await expect(api.call('/v1/ping')).resolves.toMatchObject({ url: slowPrimary.url });
    expect(slowerBackup.hits).toEqual(['GET /v1/ping']);
    expect(api.currentUrl).toBe(slowPrimary.url);
  });

  it('treats a 2xx that is not JSON as a fault and moves on', async () => {
    const primary = await server((_q, _b, res) => res.writeHead(200).end('<html>captive portal</html>'));
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const served: ServedEvent[] = [];
    const api = client([primary.url, backup.url]);
    api.on('served', (e) => served.push(e));
    await expect(api.call('/v1/ping')).resolves.toMatchObject({ url: backup.url });
    expect(served[0]!.attempts[0]).toMatchObject({ outcome: 'bad_answer', detail: 'answer is not JSON' });
  });

  it('sticks to the URL that worked', async () => {
    let primaryUp = false;
    const primary = await server((_q, _b, res) =>
      primaryUp
        ? json(res, 200, { from: 'primary' })
        : json(res, 502, { error: { code: 'bad_gateway', message: 'x' } }),
    );
    const backup = await server((_q, _b, res) => json(res, 200, { from: 'backup' }));
    const api = client([primary.url, backup.url]);
    expect((await api.call('/v1/ping')).url).toBe(backup.url);
    primaryUp = true;
    // Without a re-probe (long interval), calls keep going to the backup first.
    for (let i = 0; i < 3; i++) expect((await api.call('/v1/ping')).url).toBe(backup.url);
    expect(primary.hits).toHaveLength(1);
    expect(api.currentUrl).toBe(backup.url);
  });

  it('falls back from a stuck backup to the primary when the backup dies', async () => {
    let primaryUp = false;
    const primary = await server((_q, _b, res) => (primaryUp ? json(res, 200, {}) : json(res, 500, {})));
    let backupUp = true;
    const backup = await server((_q, _b, res) => (backupUp ? json(res, 200, {}) : json(res, 500, {})));
    const api = client([primary.url, backup.url]);
    expect((await api.call('/v1/ping')).url).toBe(backup.url);
    backupUp = false;
    primaryUp = true;
    expect((await api.call('/v1/ping')).url).toBe(primary.url);
  });

  it('re-probes the primary in the background and returns to it', async () => {
    let primaryUp = false;
    const primary = await server((_q, _b, res) => (primaryUp ? json(res, 200, {}) : json(res, 503, {})));
    const backup = await server((_q, _b, res) => json(res, 200, {}));
    const api = client([primary.url, backup.url], { primaryReprobeMs: 50 });
    const switches: SwitchedEvent[] = [];
    api.on('switched', (e) => switches.push(e));
    await api.call('/v1/ping');
    expect(api.currentUrl).toBe(backup.url);
    await sleep(200);
    expect(api.currentUrl).toBe(backup.url); // the primary still fails its probes
    primaryUp = true;
    const back = await api.next('switched');
    expect(back).toEqual({ from: backup.url, to: primary.url, reason: 'primary_recovered' });
    expect(primary.hits.filter((h) => h === 'GET /v1/ping').length).toBeGreaterThanOrEqual(2);
    expect((await api.call('/v1/regions')).url).toBe(primary.url);
    expect(switches.map((s) => s.reason)).toEqual(['fallback', 'primary_recovered']);
  });

  it('throws ApiUnavailableError naming every URL when none answers', async () => {
    const a = await refusedUrl();
    const b = await server((_q, _b, res) => json(res, 500, {}));
    const err = await client([a, b.url])
      .call('/v1/ping')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect((err as ApiUnavailableError).attempts.map((x) => x.outcome)).toEqual([
      'network_error',
      'server_error',
    ]);
    expect((err as Error).message).toContain(a);
  });

  it('tries ranked region URLs after the configured ones', async () => {
    const dead1 = await refusedUrl();
    const dead2 = await refusedUrl();
    const region = await server((_q, _b, res) => json(res, 200, {}));
    const api = client([dead1, dead2]);
    api.setRankedRegions([{ region: 'eu-west-1', url: region.url }]);
    expect(api.urls).toEqual([dead1, dead2, region.url]);
    expect((await api.call('/v1/ping')).url).toBe(region.url);
  });

  describe('alternates of a join answer', () => {
    it('come after the configured and the ranked URLs, never before', async () => {
      const primary = await server((_q, _b, res) => json(res, 200, { from: 'primary' }));
      let backupUp = false;
      const backup = await server((_q, _b, res) => (backupUp ? json(res, 200, {}) : json(res, 503, {})));
      const ranked = await server((_q, _b, res) => json(res, 200, {}));
      const alternate = await server((_q, _b, res) => json(res, 200, {}));
      const api = client([primary.url, backup.url]);
      api.setRankedRegions([{ region: 'us-east-1', url: ranked.url }]);
      api.setAlternates([
        { region: 'eu-west-1', apiUrl: alternate.url },
        // The same URL as a configured one keeps its configured place.
        { region: 'ap-southeast-1', apiUrl: backup.url },
      ]);
      expect(api.urls).toEqual([primary.url, backup.url, ranked.url, alternate.url]);
      expect((await api.call('/v1/ping')).url).toBe(primary.url);
      // From a dead primary the call goes on to the backup, not to the alternate.
      await primary.close();
      backupUp = true;
      expect((await api.call('/v1/ping')).url).toBe(backup.url);
      expect([ranked.hits, alternate.hits]).toEqual([[], []]);
    });

    it('take over when every configured URL fails, and a newer answer replaces them', async () => {
      const dead1 = await refusedUrl();
      const blackholed = await server(() => undefined);
      const first = await server((_q, _b, res) => json(res, 200, {}));
      const second = await server((_q, _b, res) => json(res, 200, {}));
      const api = client([dead1, blackholed.url], { hedgeMs: 100 });
      api.setAlternates([{ region: 'eu-west-1', apiUrl: first.url }]);
      const served = new Promise<ServedEvent>((resolve) => api.once('served', resolve));
      expect((await api.call('/v1/ping')).url).toBe(first.url);
      expect((await served).attempts.map((a) => [a.url, a.outcome])).toEqual([
        [dead1, 'network_error'],
        [first.url, 'ok'],
      ]);
      // An answer never lists the room's own region: the URL that just answered stays current anyway.
      api.setAlternates([{ region: 'ap-southeast-1', apiUrl: second.url }]);
      expect(api.urls).toEqual([dead1, blackholed.url, second.url]);
      expect(api.currentUrl).toBe(first.url);
      expect((await api.call('/v1/ping')).url).toBe(first.url);
      await first.close();
      expect((await api.call('/v1/ping')).url).toBe(second.url);
      // Gone from the chain once it failed: nothing grows with the answers.
      expect(api.urls).toEqual([dead1, blackholed.url, second.url]);
    });

    it("leave an avoided region's URL for last, even when it served the last call", async () => {
      const dead = await refusedUrl();
      const us = await server((_q, _b, res) => json(res, 200, {}));
      const eu = await server((_q, _b, res) => json(res, 200, {}));
      const api = client([dead]);
      api.setAlternates([
        { region: 'us-east-1', apiUrl: us.url },
        { region: 'eu-west-1', apiUrl: eu.url },
      ]);
      expect((await api.call('/v1/ping')).url).toBe(us.url);
      const answer = await api.call('/v1/ping', { avoidRegions: ['us-east-1'] });
      expect(answer.url).toBe(eu.url);
      expect(us.hits).toHaveLength(1);
      // Avoided is not excluded: with nothing else left, the avoided region is still asked.
      await eu.close();
      expect((await api.call('/v1/ping', { avoidRegions: ['us-east-1'] })).url).toBe(us.url);
    });
  });

  describe('regions behind the names (X-Region)', () => {
    /** An LB of `region`: every answer names it, as the LB's answers do; `frozen` stops answering. */
    async function lb(region: string) {
      const state = { frozen: false };
      const s = await server((_q, _b, res) => {
        if (state.frozen) return;
        res.setHeader('x-region', region);
        json(res, 200, { region });
      });
      return Object.assign(s, { freeze: () => (state.frozen = true) });
    }

    it('asks a name whose last answer came from an avoided region last', async () => {
      const us = await lb('us-east-1');
      const eu = await lb('eu-west-1');
      const api = client([us.url, eu.url]);
      expect((await api.call('/v1/ping')).url).toBe(us.url);
      // The configured names carry no region; the answer told which region stands behind the first.
      expect((await api.call('/v1/ping', { avoidRegions: ['us-east-1'] })).url).toBe(eu.url);
      expect(us.hits).toHaveLength(1);
    });

    it("does not wait on a suspected region's names: the next one starts beside them at once", async () => {
      const us = await lb('us-east-1');
      const eu = await lb('eu-west-1');
      // Hedging after 60 s: only a suspicion can start the second name before the first gives up.
      const api = client([us.url, eu.url], { attemptMs: 5_000 });
      expect((await api.call('/v1/ping')).url).toBe(us.url);
      us.freeze();
      const served = new Promise<ServedEvent>((resolve) => api.once('served', resolve));
      const answer = await api.call('/v1/ping', { suspectRegions: ['us-east-1'] });
      expect(answer.url).toBe(eu.url);
      // The suspected name was still asked first (it is not excluded), and had not answered when the
      // other one did: the call did not wait for its 5 s attempt timeout.
      expect(us.hits).toHaveLength(2);
      expect((await served).attempts.map((a) => [a.url, a.outcome, a.region])).toEqual([
        [eu.url, 'ok', 'eu-west-1'],
      ]);
    });

    it('lets a suspected region that still answers serve the call', async () => {
      const us = await lb('us-east-1');
      const eu = await lb('eu-west-1');
      const api = client([us.url, eu.url]);
      await api.call('/v1/ping');
      // Both names are asked at once; whichever answers first wins, and both answer here.
      const answer = await api.call('/v1/ping', { suspectRegions: ['us-east-1'] });
      expect([us.url, eu.url]).toContain(answer.url);
      expect(us.hits).toHaveLength(2);
    });

    it('ignores a region header that is not a region name', async () => {
      const odd = await server((_q, _b, res) => {
        res.setHeader('x-region', '<script>');
        json(res, 200, {});
      });
      const eu = await lb('eu-west-1');
      const api = client([odd.url, eu.url]);
      const served = new Promise<ServedEvent>((resolve) => api.once('served', resolve));
      await api.call('/v1/ping');
      expect((await served).attempts[0]!.region).toBeUndefined();
    });
  });

  it('stops at once when the caller aborts', async () => {
    const silent = await server(() => undefined);
    const api = client([silent.url], { attemptMs: 10_000 });
    const controller = new AbortController();
    const pending = api.call('/v1/ping', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user left')), 50);
    await expect(pending).rejects.toThrow('user left');
  });
});
