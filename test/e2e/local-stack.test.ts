/**
 * The local stack end to end, reduced to two regions with one media server each: every LB healthy,
 * the Route 53 emulator answering by the client's location, joins through `api.mr.test` resolved by
 * that emulator, and DNS failover when a region's LB dies (after `failureThreshold` failed probes in a
 * row, one interval apart, as Route 53 does) and failback when it returns. The backup family by name:
 * a join through `api-backup.mr-backup.test` is answered and signalled in backup names, also while the
 * primary zone drops every query.
 */
import type { Client } from '../../runtime/client/Client';
import { createNodeClient } from '../../runtime/client/node';
import { addressesIn, queryTcp, queryUdp } from '../runtime/local/dnsQuery';
import { eventually, startE2eStack, type E2eRegion, type E2eStack } from './stackHarness';

jest.setTimeout(60_000);

let e2e: E2eStack | undefined;
const clients: Client[] = [];

beforeAll(async () => {
  e2e = await startE2eStack({ slot: 2, mediaPerRegion: 1 });
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await e2e?.stop();
}, 30_000);

function stack(): E2eStack {
  if (!e2e) throw new Error('the stack did not start (see beforeAll)');
  return e2e;
}

/** What `api.mr.test` resolves to for a client located in `region`, over a real UDP query. */
async function apiAnswerFor(region: E2eRegion): Promise<string[]> {
  const s = stack();
  const reply = await queryUdp(
    { server: s.dnsServer, port: s.dnsPort, from: s.clientAddress(region) },
    'api.mr.test',
  );
  return addressesIn(reply);
}

function clientIn(
  region: E2eRegion,
  apiUrls = [`http://api.mr.test:${stack().config.local.lbPort}`],
): Client {
  const s = stack();
  const client = createNodeClient({
    apiUrls,
    dns: {
      servers: {
        'mr.test': `${s.dnsServer}:${s.dnsPort}`,
        'mr-backup.test': `${s.dnsServer}:${s.config.local.backupDnsPort}`,
      },
      maxCacheSeconds: 0,
    },
    localAddress: s.clientAddress(region),
    rttElection: false,
  });
  clients.push(client);
  return client;
}

describe('local stack (2 regions, 1 media server each)', () => {
  it('every region LB answers /health 200 and the DNS emulator routes to it', async () => {
    const s = stack();
    for (const region of s.state.regions) {
      const res = await fetch(`${region.lbUrl}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', region: region.name, liveServers: 1 });
    }
    const state = (await s.control('GET', '/api/state')) as {
      regions: Array<{ name: string; dnsHealthy: boolean; servers: Array<{ id: string; alive: boolean }> }>;
    };
    expect(state.regions.map((r) => [r.name, r.dnsHealthy, r.servers.map((m) => [m.id, m.alive])])).toEqual([
      ['us-east-1', true, [['us-east-1-m0', true]]],
      ['eu-west-1', true, [['eu-west-1-m0', true]]],
    ]);
  });

  it('answers api.mr.test with the nearest region, by the source address of the query', async () => {
    const s = stack();
    expect(await apiAnswerFor('us-east-1')).toEqual([s.address('us-east-1')]);
    expect(await apiAnswerFor('eu-west-1')).toEqual([s.address('eu-west-1')]);
    const overTcp = await queryTcp(
      { server: s.dnsServer, port: s.dnsPort, from: s.clientAddress('eu-west-1') },
      'api.mr.test',
    );
    expect(addressesIn(overTcp)).toEqual([s.address('eu-west-1')]);
    const regional = await queryUdp(
      { server: s.dnsServer, port: s.dnsPort, from: s.clientAddress('eu-west-1') },
      'us-east-1.api.mr.test',
    );
    expect(addressesIn(regional)).toEqual([s.address('us-east-1')]);
    const backup = await queryUdp(
      { server: s.dnsServer, port: s.config.local.backupDnsPort, from: s.clientAddress('us-east-1') },
      'api-backup.mr-backup.test',
    );
    expect(backup.flags! & 0x400).toBeTruthy(); // authoritative
    expect(addressesIn(backup).length).toBeGreaterThan(0);
    expect(
      addressesIn(backup).every((a) => [s.address('us-east-1'), s.address('eu-west-1')].includes(a)),
    ).toBe(true);
  });

  it("joins through api.mr.test via the SDK; a peer from elsewhere joins its own region's leg of the room", async () => {
    const s = stack();
    const nearUs = clientIn('us-east-1');
    const nearEu = clientIn('eu-west-1');

    const alice = nearUs.joinRoom('e2e-shared', await s.stack.devToken('e2e-shared', 'alice'), {
      consume: false,
    });
    const aliceJoined = await alice.ready;
    expect(aliceJoined).toMatchObject({
      region: 'us-east-1',
      serverId: 'us-east-1-m0',
      apiUrl: `http://api.mr.test:${s.config.local.lbPort}`,
    });
    expect(alice.connectionState).toBe('connected');

    // The EU LB reads its own replica: wait until the placement has replicated before asking it.
    await eventually('the room to replicate to eu-west-1', () =>
      s.stack.storeFor('eu-west-1').rooms.get('e2e-shared'),
    );
    const bob = nearEu.joinRoom('e2e-shared', await s.stack.devToken('e2e-shared', 'bob'), {
      consume: false,
    });
    // Cascading: Bob joins his own region's leg of the room, piped to Alice's (the room item stays hers).
    expect(await bob.ready).toMatchObject({ region: 'eu-west-1', serverId: 'eu-west-1-m0' });
    expect(await s.stack.storeFor('eu-west-1').legs.get('e2e-shared', 'eu-west-1')).toMatchObject({
      serverId: 'eu-west-1-m0',
    });
    // Bob's API call went to the EU LB: that is what the emulator answered him.
    const bobAnswers = s.stack.dns
      .status()
      .recentAnswers.filter((a) => a.source === s.clientAddress('eu-west-1') && a.name === 'api.mr.test');
    expect(bobAnswers.length).toBeGreaterThan(0);
    expect(bobAnswers.every((a) => a.addresses.join() === s.address('eu-west-1'))).toBe(true);

    // A new room is placed in the region whose LB the client reached: its nearest.
    const carol = nearEu.joinRoom('e2e-eu-only', await s.stack.devToken('e2e-eu-only', 'carol'), {
      consume: false,
    });
    expect(await carol.ready).toMatchObject({ region: 'eu-west-1', serverId: 'eu-west-1-m0' });

    const state = (await s.control('GET', '/api/state')) as {
      rooms: Array<{ id: string; region: string; serverId: string }>;
    };
    expect(state.rooms).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'e2e-shared', region: 'us-east-1', serverId: 'us-east-1-m0' }),
        expect.objectContaining({ id: 'e2e-eu-only', region: 'eu-west-1', serverId: 'eu-west-1-m0' }),
      ]),
    );
    await Promise.all([alice.leave(), bob.leave(), carol.leave()]);
  });

  it('a join through the backup name is answered, signalled and kept in backup names', async () => {
    const s = stack();
    const port = s.config.local.lbPort;
    const backupOnly = clientIn('eu-west-1', [`http://api-backup.mr-backup.test:${port}`]);
    const dave = backupOnly.joinRoom('e2e-backup', await s.stack.devToken('e2e-backup', 'dave'), {
      consume: false,
    });
    const joined = await dave.ready;
    expect(joined.apiUrl).toBe(`http://api-backup.mr-backup.test:${port}`);
    expect(joined.signalingUrl).toBe(
      `ws://${joined.region}.api-backup.mr-backup.test:${port}/v1/rooms/e2e-backup/signal`,
    );
    // The answer itself, straight from the LB by name: alternates in the backup family too.
    const token = await s.stack.devToken('e2e-backup', 'erin');
    const { data } = await backupOnly.api.call<{
      signalingUrl: string;
      fallbackSignalingUrl: string;
      alternates: { region: string; apiUrl: string }[];
    }>('/v1/rooms/e2e-backup/join', { body: {}, token });
    expect(data.signalingUrl).toMatch(/^ws:\/\/[a-z0-9-]+\.api-backup\.mr-backup\.test:/);
    expect(data.fallbackSignalingUrl).toMatch(/^ws:\/\/[a-z0-9-]+\.api\.mr\.test:/);
    expect(data.alternates.length).toBeGreaterThan(0);
    for (const a of data.alternates)
      expect(a.apiUrl).toBe(`http://${a.region}.api-backup.mr-backup.test:${port}`);
    await dave.leave();
  });

  it('while the primary zone drops every query, a dual-URL client joins and signals by backup names alone', async () => {
    const s = stack();
    const port = s.config.local.lbPort;
    const zones = await s.control('POST', '/api/dns/zones/primary/fail');
    expect(zones).toMatchObject({ zones: { primary: { serving: false }, backup: { serving: true } } });
    try {
      await expect(
        queryUdp(
          { server: s.dnsServer, port: s.dnsPort, from: s.clientAddress('us-east-1') },
          'api.mr.test',
          'A',
          500,
        ),
      ).rejects.toThrow(/no UDP answer/);
      const state = (await s.control('GET', '/api/state')) as {
        dnsAnswers: { location: string; answers: string[]; backupAnswers: string[] }[];
      };
      expect(state.dnsAnswers.every((a) => a.answers.length === 0 && a.backupAnswers.length === 1)).toBe(
        true,
      );

      const dual = clientIn('us-east-1', [
        `http://api.mr.test:${port}`,
        `http://api-backup.mr-backup.test:${port}`,
      ]);
      const frank = dual.joinRoom('e2e-outage', await s.stack.devToken('e2e-outage', 'frank'), {
        consume: false,
      });
      const joined = await frank.ready;
      expect(joined.apiUrl).toBe(`http://api-backup.mr-backup.test:${port}`);
      expect(joined.signalingUrl).toMatch(/^ws:\/\/[a-z0-9-]+\.api-backup\.mr-backup\.test:/);
      expect(frank.connectionState).toBe('connected');
      await frank.leave();
    } finally {
      await s.control('POST', '/api/dns/zones/primary/restore');
    }
    expect(await apiAnswerFor('us-east-1')).toEqual([s.address('us-east-1')]);
  });

  it('drops a region from DNS after failureThreshold failed probes when its LB dies, and brings it back', async () => {
    const s = stack();
    const { failureThreshold } = s.stack.dns.status().healthCheck;
    expect(failureThreshold).toBeGreaterThan(1);
    const health = () => s.stack.dns.status().regions.find((r) => r.region === 'us-east-1')!;
    const killedAt = Date.now();
    await s.control('POST', '/api/processes/us-east-1-lb/kill');

    // One failed probe is not enough: Route 53 keeps answering the region until `failureThreshold` in
    // a row. Probes are an interval apart, so the in-between state lasts (threshold - 1) intervals.
    const firstFailure = await eventually(
      'a failed probe of the dead LB',
      () => {
        const h = health();
        return h.lastProbeOk === false && h.lastProbeAt! >= killedAt ? h : null;
      },
      20_000,
      20,
    );
    expect(firstFailure).toMatchObject({ state: 'healthy', routable: true });
    expect(firstFailure.streak).toBeLessThan(failureThreshold);

    await eventually(
      'api.mr.test to answer eu-west-1 for a client near us-east-1',
      async () => (await apiAnswerFor('us-east-1')).join() === s.address('eu-west-1'),
      30_000,
    );
    expect(health()).toMatchObject({ state: 'unhealthy', routable: false });
    const down = s.stack.dns.status().transitions.filter((t) => t.region === 'us-east-1' && t.at >= killedAt);
    expect(down.map((t) => [t.from, t.to])).toEqual([['healthy', 'unhealthy']]);
    expect(await apiAnswerFor('eu-west-1')).toEqual([s.address('eu-west-1')]);

    const restoredAt = Date.now();
    await s.control('POST', '/api/processes/us-east-1-lb/restore');
    const firstSuccess = await eventually(
      'a passing probe of the restarted LB',
      () => {
        const h = health();
        return h.lastProbeOk === true && h.lastProbeAt! >= restoredAt ? h : null;
      },
      40_000,
      20,
    );
    // Coming back takes `failureThreshold` passing probes too.
    expect(firstSuccess).toMatchObject({ state: 'unhealthy', routable: false });
    await eventually(
      'api.mr.test to answer us-east-1 again after the LB returns',
      async () => (await apiAnswerFor('us-east-1')).join() === s.address('us-east-1'),
      30_000,
    );
    const up = s.stack.dns.status().transitions.filter((t) => t.region === 'us-east-1' && t.at >= restoredAt);
    expect(up.map((t) => [t.from, t.to])).toEqual([['unhealthy', 'healthy']]);
  });
});
