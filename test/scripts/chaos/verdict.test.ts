import {
  distribution,
  groupDnsOutage,
  groupOutcomes,
  judge,
  judgeDnsOutage,
  percentile,
  type ClientOutcome,
} from '../../../scripts/chaos/verdict';

function client(overrides: Partial<ClientOutcome>): ClientOutcome {
  return {
    id: 'c',
    location: 'eu-west-1',
    kind: 'dual-url',
    withMedia: false,
    forcedRelay: false,
    apiRegionBefore: 'eu-west-1',
    serverRegionBefore: 'eu-west-1',
    requestsAfterInjection: 10,
    failedRequestsAfterInjection: 0,
    callsAfterInjection: 10,
    failedCallsAfterInjection: 0,
    sessionDownAtMs: null,
    signalingLostAtMs: null,
    roomMovesAfterInjection: 0,
    startedAfterInjection: false,
    startedAtMs: null,
    joinedAtMs: null,
    signalingUrl: 'ws://eu-west-1.api.mr.test:8080/v1/rooms/r/signal',
    detectedAtMs: null,
    recoveredAtMs: null,
    mediaAtMs: null,
    serverRegionAfter: 'eu-west-1',
    events: [],
    ...overrides,
  };
}

const okData = {
  itemsBefore: 10,
  roomsBefore: 3,
  roomsAfter: 3,
  itemsLost: 0,
  lostKeys: [],
  replicasConverged: true,
};
const okDns = { droppedAfterMs: 3_000, boundMs: 5_000 };

describe('chaos verdict', () => {
  it('computes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(distribution([2, 4])).toEqual({ count: 2, p50: 2, p95: 4, max: 4 });
  });

  it('passes when survivors saw nothing and every affected client recovered', () => {
    const clients = [
      client({ id: 'survivor' }),
      client({ id: 'api-hit', apiRegionBefore: 'us-east-1', detectedAtMs: 100, recoveredAtMs: 900 }),
      client({
        id: 'server-hit',
        kind: 'dns-only',
        serverRegionBefore: 'us-east-1',
        detectedAtMs: 200,
        recoveredAtMs: 7_000,
      }),
    ];
    const verdict = judge({ failedRegion: 'us-east-1', clients, data: okData, dns: okDns, rollbackOk: true });
    expect(verdict.checks.map((c) => [c.name, c.pass])).toEqual([
      ['survivors saw zero failed requests', true],
      ['every affected client recovered', true],
      ['no item that reached a surviving replica was lost', true],
      ['DNS stopped answering the failed region within its bound', true],
      ['rollback restored steady state', true],
    ]);
    expect(verdict.pass).toBe(true);
  });

  it('fails on one failed request of a survivor, naming the client', () => {
    const verdict = judge({
      failedRegion: 'us-east-1',
      clients: [client({ id: 'unlucky', failedRequestsAfterInjection: 1 })],
      data: okData,
      dns: okDns,
      rollbackOk: true,
    });
    expect(verdict.pass).toBe(false);
    expect(verdict.checks[0]).toMatchObject({ pass: false, detail: expect.stringContaining('unlucky (1)') });
  });

  it('fails when an affected client did not recover, lost its media, or stayed on the failed region', () => {
    const failedRegion = 'us-east-1';
    const cases: Partial<ClientOutcome>[] = [
      { serverRegionBefore: failedRegion, detectedAtMs: 10, recoveredAtMs: null },
      {
        serverRegionBefore: failedRegion,
        withMedia: true,
        detectedAtMs: 10,
        sessionDownAtMs: 10,
        recoveredAtMs: 500,
        mediaAtMs: null,
      },
      { serverRegionBefore: failedRegion, serverRegionAfter: failedRegion },
    ];
    for (const c of cases) {
      const verdict = judge({
        failedRegion,
        clients: [client(c)],
        data: okData,
        dns: okDns,
        rollbackOk: true,
      });
      expect(verdict.checks[1]!.pass).toBe(false);
      expect(verdict.pass).toBe(false);
    }
  });

  it('asks no media recovery of a media client whose API failed but whose session never did', () => {
    const verdict = judge({
      failedRegion: 'us-east-1',
      clients: [
        client({
          apiRegionBefore: 'us-east-1',
          serverRegionBefore: 'ap-southeast-1',
          withMedia: true,
          detectedAtMs: 1_500,
          recoveredAtMs: 30_000,
          sessionDownAtMs: null,
          mediaAtMs: null,
        }),
      ],
      data: okData,
      dns: okDns,
      rollbackOk: true,
    });
    expect(verdict.checks[1]).toMatchObject({ pass: true });
  });

  it('accepts an affected client that never saw a failure (an evacuated region keeps answering)', () => {
    const verdict = judge({
      failedRegion: 'us-east-1',
      clients: [client({ apiRegionBefore: 'us-east-1' })],
      data: okData,
      dns: okDns,
      rollbackOk: true,
    });
    expect(verdict.checks[1]!.pass).toBe(true);
  });

  it('fails on lost items, diverged replicas, a late DNS drop and a failed rollback', () => {
    const base = { failedRegion: 'us-east-1', clients: [] };
    expect(
      judge({
        ...base,
        data: { ...okData, itemsLost: 1, lostKeys: ['room#a|meta'] },
        dns: okDns,
        rollbackOk: true,
      }).checks[2],
    ).toMatchObject({
      pass: false,
      detail: expect.stringContaining('room#a|meta'),
    });
    expect(
      judge({ ...base, data: { ...okData, replicasConverged: false }, dns: okDns, rollbackOk: true })
        .checks[2]!.pass,
    ).toBe(false);
    expect(
      judge({ ...base, data: okData, dns: { droppedAfterMs: 6_000, boundMs: 5_000 }, rollbackOk: true })
        .checks[3]!.pass,
    ).toBe(false);
    expect(
      judge({ ...base, data: okData, dns: { droppedAfterMs: null, boundMs: 5_000 }, rollbackOk: true })
        .checks[3]!.pass,
    ).toBe(false);
    expect(judge({ ...base, data: okData, dns: okDns, rollbackOk: false }).pass).toBe(false);
  });

  it('groups clients by affectedness and kind, with recovery distributions', () => {
    const groups = groupOutcomes(
      [
        client({
          id: 'a',
          kind: 'dual-url',
          serverRegionBefore: 'us-east-1',
          detectedAtMs: 100,
          recoveredAtMs: 600,
        }),
        client({
          id: 'b',
          kind: 'dual-url',
          serverRegionBefore: 'us-east-1',
          detectedAtMs: 200,
          recoveredAtMs: 1_200,
        }),
        client({
          id: 'c',
          kind: 'dns-only',
          apiRegionBefore: 'us-east-1',
          detectedAtMs: 100,
          recoveredAtMs: null,
          failedRequestsAfterInjection: 4,
        }),
        client({ id: 'd', kind: 'dns-only' }),
      ],
      'us-east-1',
    );
    const byName = Object.fromEntries(groups.map((g) => [g.group, g]));
    expect(byName['affected / dual-url']).toMatchObject({
      clients: 2,
      detected: 2,
      recovered: 2,
      recoveryMs: { p50: 600, max: 1_200 },
      outageMs: { p50: 500, max: 1_000 },
    });
    expect(byName['affected / dns-only']).toMatchObject({
      clients: 1,
      detected: 1,
      recovered: 0,
      failedRequests: 4,
    });
    expect(byName['survivors / dns-only']).toMatchObject({ clients: 1, detected: 0, failedRequests: 0 });
    expect(byName['survivors / dual-url']).toMatchObject({ clients: 0 });
  });
});

describe('dns-outage verdict', () => {
  const BACKUP_SIGNAL = 'ws://eu-west-1.api-backup.mr-backup.test:8080/v1/rooms/r/signal';
  const dns = { primaryQueries: 30, primaryAnswered: 0, backupQueries: 30, backupAnswered: 30 };
  const fleet = [
    // Connected at the injection: its primary attempts failed, the backup answered every call.
    client({ id: 'a', failedRequestsAfterInjection: 3, detectedAtMs: 5_100, recoveredAtMs: 5_500 }),
    client({ id: 'b', kind: 'dns-only', failedCallsAfterInjection: 4, failedRequestsAfterInjection: 4 }),
    client({ id: 'c', startedAfterInjection: true, joinedAtMs: 7_000, signalingUrl: BACKUP_SIGNAL }),
    client({
      id: 'd',
      withMedia: true,
      startedAfterInjection: true,
      joinedAtMs: 7_200,
      mediaAtMs: 9_000,
      signalingUrl: BACKUP_SIGNAL,
    }),
    client({ id: 'e', kind: 'dns-only', startedAfterInjection: true, joinedAtMs: null, signalingUrl: null }),
  ];
  const verdict = (clients = fleet, d = dns) =>
    judgeDnsOutage({ clients, backupDomain: 'mr-backup.test', dns: d, data: okData, rollbackOk: true });

  it('passes when dual-URL clients lose nothing, whatever the DNS-only baseline suffers', () => {
    const v = verdict();
    expect(v.checks.filter((c) => !c.pass)).toEqual([]);
    expect(v.pass).toBe(true);
    expect(v.checks[2]!.detail).toMatch(/2 of 2 joined \(100%\)/);
  });

  it('fails on a failed dual-URL call, a lost session, a join through primary names, or missing media', () => {
    const withFleet = (id: string, over: Partial<ClientOutcome>) =>
      verdict(fleet.map((c) => (c.id === id ? { ...c, ...over } : c)));
    expect(withFleet('a', { failedCallsAfterInjection: 1 }).checks[0]).toMatchObject({ pass: false });
    expect(withFleet('a', { sessionDownAtMs: 4_000, signalingLostAtMs: 4_000 }).checks[1]).toMatchObject({
      pass: false,
    });
    // A rejoin the platform ordered (a split room converging) is not a session the outage cost.
    expect(withFleet('a', { sessionDownAtMs: 4_000, roomMovesAfterInjection: 1 }).checks[1]).toMatchObject({
      pass: true,
      detail: expect.stringContaining('1 rejoins because a split room converged'),
    });
    expect(
      withFleet('c', { signalingUrl: 'ws://eu-west-1.api.mr.test:8080/v1/rooms/r/signal' }).checks[2],
    ).toMatchObject({ pass: false, detail: expect.stringContaining('c (ws://eu-west-1.api.mr.test') });
    expect(withFleet('c', { joinedAtMs: null }).checks[2]).toMatchObject({ pass: false });
    expect(withFleet('d', { mediaAtMs: null }).checks[3]).toMatchObject({ pass: false });
    // Nobody joined during the outage: the hypothesis was not tested, so it does not pass.
    expect(verdict(fleet.filter((c) => !c.startedAfterInjection)).checks[2]).toMatchObject({ pass: false });
  });

  it('fails when the primary zone answered during the outage or the backup zone did not', () => {
    expect(verdict(fleet, { ...dns, primaryAnswered: 1 }).pass).toBe(false);
    expect(verdict(fleet, { ...dns, backupAnswered: 29 }).pass).toBe(false);
    expect(verdict(fleet, { ...dns, primaryQueries: 0 }).pass).toBe(false);
  });

  it('groups connected clients and the wave that joined during the outage, by kind', () => {
    const groups = Object.fromEntries(groupDnsOutage(fleet, 'mr-backup.test').map((g) => [g.group, g]));
    expect(groups['connected / dual-url']).toMatchObject({
      clients: 1,
      failedCalls: 0,
      failedAttempts: 3,
      joined: 1,
      recoveryMs: { max: 5_500 },
    });
    expect(groups['connected / dns-only']).toMatchObject({ clients: 1, failedCalls: 4 });
    expect(groups['joined during outage / dual-url']).toMatchObject({
      clients: 2,
      joined: 2,
      onBackupNames: 2,
      joinMs: { p50: 7_000, max: 7_200 },
      mediaMs: { max: 9_000 },
    });
    expect(groups['joined during outage / dns-only']).toMatchObject({ clients: 1, joined: 0 });
  });
});
