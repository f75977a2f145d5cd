import {
  distribution,
  groupOutcomes,
  judge,
  percentile,
  type ClientOutcome,
} from '../../../scripts/chaos/verdict';

function client(overrides: Partial<ClientOutcome>): ClientOutcome {
  return {
    id: 'c',
    location: 'eu-west-1',
    kind: 'dual-url',
    withMedia: false,
    apiRegionBefore: 'eu-west-1',
    serverRegionBefore: 'eu-west-1',
    requestsAfterInjection: 10,
    failedRequestsAfterInjection: 0,
    callsAfterInjection: 10,
    failedCallsAfterInjection: 0,
    sessionDownAtMs: null,
    startedAfterInjection: false,
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
