/**
 * Answers stay in the name family the join came in on: a client that reached the LB through a backup
 * name (its primary zone may be down) gets its signaling URL and alternates in backup names, plus the
 * same region's primary signaling URL as a fallback; a primary or unknown Host gets primary names.
 */
import { join, mediaServer, startLb, T0, type LbHarness } from './lbHarness';

const PRIMARY = (r: string) => `http://${r}.api.mr.test:8080`;
const BACKUP = (r: string) => `http://${r}.api-backup.mr-backup.test:8080`;

let h: LbHarness;

beforeEach(async () => {
  h = await startLb({
    region: 'eu-west-1',
    config: {
      publicApiUrl: PRIMARY('eu-west-1'),
      backupApiUrl: BACKUP('eu-west-1'),
      backupDomain: 'mr-backup.test',
    },
  });
  for (const region of ['us-east-1', 'ap-southeast-1']) {
    await h.admin.regions.putSummary({
      region,
      apiUrl: PRIMARY(region),
      backupApiUrl: BACKUP(region),
      liveServers: 1,
      load: 0,
      capacity: 100,
      reportedAt: T0,
    });
  }
  await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
  await h.admin.servers.put(mediaServer('us-a', 'us-east-1'));
  await h.app.fleet.refresh();
});

afterEach(async () => {
  await h.close();
});

describe('join answers in the family of the Host', () => {
  it('answers backup names to a join through the global backup name', async () => {
    const res = await join(h, 'r1', { headers: { host: 'api-backup.mr-backup.test:8080' } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.signalingUrl).toBe('ws://eu-west-1.api-backup.mr-backup.test:8080/v1/rooms/r1/signal');
    expect(body.fallbackSignalingUrl).toBe('ws://eu-west-1.api.mr.test:8080/v1/rooms/r1/signal');
    expect(body.alternates).toEqual([
      { region: 'us-east-1', apiUrl: BACKUP('us-east-1') },
      { region: 'ap-southeast-1', apiUrl: BACKUP('ap-southeast-1') },
    ]);
  });

  it('answers backup names to a join through a region backup name, whatever its case', async () => {
    const body = (
      await join(h, 'r1', { headers: { host: 'EU-WEST-1.api-backup.MR-BACKUP.test.:8080' } })
    ).json();
    expect(body.signalingUrl).toMatch(/^ws:\/\/eu-west-1\.api-backup\.mr-backup\.test:8080\//);
    expect(body.alternates.every((a: { apiUrl: string }) => a.apiUrl.includes('.api-backup.'))).toBe(true);
  });

  it('answers primary names to a join through a primary name', async () => {
    const body = (await join(h, 'r1', { headers: { host: 'api.mr.test:8080' } })).json();
    expect(body.signalingUrl).toBe('ws://eu-west-1.api.mr.test:8080/v1/rooms/r1/signal');
    expect(body.fallbackSignalingUrl).toBe(
      'ws://eu-west-1.api-backup.mr-backup.test:8080/v1/rooms/r1/signal',
    );
    expect(body.alternates).toEqual([
      { region: 'us-east-1', apiUrl: PRIMARY('us-east-1') },
      { region: 'ap-southeast-1', apiUrl: PRIMARY('ap-southeast-1') },
    ]);
  });

  it.each([['127.0.2.1:8080'], ['mr-backup.test.evil.example'], ['api-backup.mr-backup.testing']])(
    'answers primary names to an unknown Host (%s)',
    async (host) => {
      const body = (await join(h, 'r1', { headers: { host } })).json();
      expect(body.signalingUrl).toBe('ws://eu-west-1.api.mr.test:8080/v1/rooms/r1/signal');
      expect(body.alternates.map((a: { apiUrl: string }) => a.apiUrl)).toEqual([
        PRIMARY('us-east-1'),
        PRIMARY('ap-southeast-1'),
      ]);
    },
  );

  it('answers a room served in another region with that region in the same family', async () => {
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1', { status: 'draining' }));
    await h.app.fleet.refresh();
    const body = (await join(h, 'r2', { headers: { host: 'api-backup.mr-backup.test' } })).json();
    expect(body.region).toBe('us-east-1');
    expect(body.signalingUrl).toBe('ws://us-east-1.api-backup.mr-backup.test:8080/v1/rooms/r2/signal');
    expect(body.fallbackSignalingUrl).toBe('ws://us-east-1.api.mr.test:8080/v1/rooms/r2/signal');
    expect(body.alternates.map((a: { region: string }) => a.region)).not.toContain('us-east-1');
  });

  it('reports its backup URL in its region summary and in /v1/regions', async () => {
    const summary = await h.app.regionReporter.report();
    expect(summary).toMatchObject({ apiUrl: PRIMARY('eu-west-1'), backupApiUrl: BACKUP('eu-west-1') });
    const regions = (await h.app.inject({ method: 'GET', url: '/v1/regions' })).json();
    expect(regions.regions).toContainEqual(
      expect.objectContaining({ region: 'us-east-1', backupApiUrl: BACKUP('us-east-1') }),
    );
  });
});

describe("the local stack's address family", () => {
  it('answers addresses to an IP-literal Host, and names to everything else', async () => {
    await h.close();
    h = await startLb({
      region: 'eu-west-1',
      config: {
        publicApiUrl: PRIMARY('eu-west-1'),
        backupApiUrl: BACKUP('eu-west-1'),
        backupDomain: 'mr-backup.test',
        addressApiUrl: 'http://127.0.2.1:8080',
      },
    });
    await h.admin.regions.putSummary({
      region: 'us-east-1',
      apiUrl: PRIMARY('us-east-1'),
      backupApiUrl: BACKUP('us-east-1'),
      addressApiUrl: 'http://127.0.1.1:8080',
      liveServers: 1,
      load: 0,
      capacity: 100,
      reportedAt: T0,
    });
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    const byAddress = (await join(h, 'r1', { headers: { host: '127.0.2.1:8080' } })).json();
    expect(byAddress.signalingUrl).toBe('ws://127.0.2.1:8080/v1/rooms/r1/signal');
    expect(byAddress).not.toHaveProperty('fallbackSignalingUrl');
    expect(byAddress.alternates).toEqual([{ region: 'us-east-1', apiUrl: 'http://127.0.1.1:8080' }]);
    const byName = (await join(h, 'r1', { headers: { host: 'api.mr.test:8080' } })).json();
    expect(byName.signalingUrl).toBe('ws://eu-west-1.api.mr.test:8080/v1/rooms/r1/signal');
    expect(byName.alternates).toEqual([{ region: 'us-east-1', apiUrl: PRIMARY('us-east-1') }]);
  });
});

describe('an LB without a backup family', () => {
  it('answers primary names and no fallback, even to a backup Host', async () => {
    await h.close();
    h = await startLb({ region: 'eu-west-1', config: { publicApiUrl: PRIMARY('eu-west-1') } });
    await h.admin.servers.put(mediaServer('eu-a', 'eu-west-1'));
    await h.app.fleet.refresh();
    const body = (await join(h, 'r1', { headers: { host: 'api-backup.mr-backup.test' } })).json();
    expect(body.signalingUrl).toBe('ws://eu-west-1.api.mr.test:8080/v1/rooms/r1/signal');
    expect(body).not.toHaveProperty('fallbackSignalingUrl');
  });
});
