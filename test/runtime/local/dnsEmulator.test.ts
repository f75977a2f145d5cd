/**
 * The Route 53 emulator over real UDP and TCP, with real HTTP health targets: answers by client location,
 * failover after exactly `failureThreshold` failed probes and back, the all-unhealthy rule, and the backup
 * zone answering on its own.
 */
import { Resolver } from 'node:dns/promises';
import * as dnsPacket from 'dns-packet';
import { parseDeploymentConfig } from '../../../lib/config';
import { type DnsEmulator, startDnsEmulator } from '../../../runtime/local/dnsEmulator';
import { addressesIn, type DnsReply, queryTcp, queryUdp, type QueryTarget } from './dnsQuery';
import { FakeLb } from './fakeLb';

const REGIONS = [
  { name: 'us-east-1', address: '127.0.71.1', client: '127.0.71.100' },
  { name: 'eu-west-1', address: '127.0.72.1', client: '127.0.72.100' },
  { name: 'ap-southeast-1', address: '127.0.73.1', client: '127.0.73.100' },
] as const;
const [US, EU, AP] = REGIONS;
const THRESHOLD = 3;
const TTL = 7;
const DNS_ADDRESS = '127.0.70.1';

let lbs: Record<string, FakeLb>;
let dns: DnsEmulator;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const primary = (from: string): QueryTarget => ({ server: DNS_ADDRESS, port: dns.ports.primary, from });
const backup = (from: string): QueryTarget => ({ server: DNS_ADDRESS, port: dns.ports.backup, from });
const api = async (from: string) => addressesIn(await queryUdp(primary(from), 'api.mr.test'));
const health = (region: string) => dns.status().regions.find((r) => r.region === region)!;

/** Answers the region's next probe and waits until the checker has recorded it (and every one before). */
async function probeResult(region: string, status: number): Promise<void> {
  const lb = lbs[region]!;
  await lb.answerNext(status);
  await waitFor(`${region} probe recorded`, () => health(region).probes === lb.served.length);
}

beforeEach(async () => {
  lbs = {};
  const first = await FakeLb.start(US.address, 0);
  lbs[US.name] = first;
  for (const r of [EU, AP]) lbs[r.name] = await FakeLb.start(r.address, first.port);
  const config = parseDeploymentConfig({
    healthCheck: { failureThreshold: THRESHOLD },
    local: {
      addresses: Object.fromEntries(REGIONS.map((r) => [r.name, r.address])),
      lbPort: first.port,
      dnsAddress: DNS_ADDRESS,
      dnsTtlSeconds: TTL,
      healthCheckIntervalSeconds: 0.1,
    },
  });
  // Held probes wait for the test; the timeout must not fail them first.
  dns = await startDnsEmulator({ config, port: 0, backupPort: 0, statusPort: 0, probeTimeoutMs: 10_000 });
});

afterEach(async () => {
  await dns?.close();
  await Promise.all(Object.values(lbs).map((lb) => lb.close()));
});

test('api answers the nearest region to the client, over UDP and TCP, with the configured TTL', async () => {
  await waitFor('every region healthy', () => dns.status().regions.every((r) => r.healthy));
  for (const r of REGIONS) {
    const udp = await queryUdp(primary(r.client), 'api.mr.test');
    expect(udp.rcode).toBe('NOERROR');
    expect(udp.flag_aa).toBe(true);
    expect(udp.answers).toEqual([
      expect.objectContaining({ name: 'api.mr.test', type: 'A', ttl: TTL, data: r.address }),
    ]);
    expect(addressesIn(await queryTcp(primary(r.client), 'api.mr.test'))).toEqual([r.address]);
  }
  // Any other source is a client at the default location, the first region.
  expect(await api('127.0.0.1')).toEqual([US.address]);

  // Through an ordinary stub resolver bound to a client's address.
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([`${DNS_ADDRESS}:${dns.ports.primary}`]);
  resolver.setLocalAddress(AP.client);
  expect(await resolver.resolve4('api.mr.test', { ttl: true })).toEqual([{ address: AP.address, ttl: TTL }]);
  expect(await resolver.resolve4('eu-west-1.api.mr.test')).toEqual([EU.address]);
});

test('the zone apex, missing names, other types and other zones get proper answers', async () => {
  const from = primary(EU.client);
  const soaQuery = await queryUdp(from, 'mr.test', 'SOA');
  expect(soaQuery.answers).toEqual([
    expect.objectContaining({
      type: 'SOA',
      data: expect.objectContaining({ mname: 'ns1.mr.test', minimum: TTL }),
    }),
  ]);
  const ns = await queryTcp(from, 'mr.test', 'NS');
  expect(ns.answers).toEqual([expect.objectContaining({ type: 'NS', data: 'ns1.mr.test' })]);
  expect(ns.additionals).toEqual(
    expect.arrayContaining([expect.objectContaining({ name: 'ns1.mr.test', data: DNS_ADDRESS })]),
  );

  const aaaa = await queryUdp(from, 'api.mr.test', 'AAAA');
  expect(aaaa.rcode).toBe('NOERROR');
  expect(aaaa.answers).toEqual([]);
  expect(aaaa.authorities).toEqual([expect.objectContaining({ type: 'SOA', name: 'mr.test' })]);

  const missing = await queryUdp(from, 'nope.api.mr.test');
  expect(missing.rcode).toBe('NXDOMAIN');
  expect(missing.flag_aa).toBe(true);
  expect(missing.authorities).toEqual([expect.objectContaining({ type: 'SOA' })]);

  const outside = await queryUdp(from, 'example.com');
  expect(outside.rcode).toBe('NXDOMAIN');
  expect(outside.flag_aa).toBe(false);

  // Each server serves its own zone only.
  expect((await queryUdp(from, 'api-backup.mr-backup.test')).rcode).toBe('NXDOMAIN');
  expect((await queryUdp(from, 'api-backup.mr.test')).rcode).toBe('NXDOMAIN');
  expect((await queryUdp(backup(EU.client), 'api.mr.test')).rcode).toBe('NXDOMAIN');
  expect((await queryUdp(backup(EU.client), 'eu-west-1.api.mr.test')).rcode).toBe('NXDOMAIN');
  expect((await queryUdp(primary(EU.client), 'API.MR.TEST.')).rcode).toBe('NOERROR');
});

test('a region is dropped after exactly threshold consecutive failed probes and comes back after as many good ones', async () => {
  const lb = lbs[US.name]!;
  lb.holdProbes();
  await probeResult(US.name, 200);
  expect(health(US.name).state).toBe('healthy');

  // threshold - 1 failures, then a success: the streak starts over.
  for (let i = 0; i < THRESHOLD - 1; i++) await probeResult(US.name, 503);
  expect(health(US.name)).toMatchObject({ healthy: true, streak: THRESHOLD - 1 });
  expect(await api(US.client)).toEqual([US.address]);
  await probeResult(US.name, 200);
  expect(health(US.name).streak).toBe(0);

  for (let i = 0; i < THRESHOLD - 1; i++) await probeResult(US.name, 503);
  expect(await api(US.client)).toEqual([US.address]);
  const failedAt = Date.now();
  await probeResult(US.name, 503);
  expect(health(US.name)).toMatchObject({ state: 'unhealthy', healthy: false });
  // The nearest healthy region from us-east-1 is eu-west-1.
  expect(await api(US.client)).toEqual([EU.address]);
  expect(addressesIn(await queryTcp(primary(US.client), 'api.mr.test'))).toEqual([EU.address]);
  // Region names keep answering: they are simple records without health checks.
  expect(addressesIn(await queryUdp(primary(US.client), 'us-east-1.api.mr.test'))).toEqual([US.address]);

  for (let i = 0; i < THRESHOLD - 1; i++) await probeResult(US.name, 200);
  expect(await api(US.client)).toEqual([EU.address]);
  await probeResult(US.name, 200);
  expect(await api(US.client)).toEqual([US.address]);

  const transitions = dns.status().transitions.filter((t) => t.region === US.name);
  expect(transitions.map((t) => [t.from, t.to])).toEqual([
    ['unknown', 'healthy'],
    ['healthy', 'unhealthy'],
    ['unhealthy', 'healthy'],
  ]);
  expect(transitions[1]!.at).toBeGreaterThanOrEqual(failedAt);
  expect(transitions[1]!.detail).toBe('HTTP 503');
});

test('an LB that stops answering is dropped like a failing one', async () => {
  await waitFor('every region healthy', () => dns.status().regions.every((r) => r.healthy));
  await lbs[EU.name]!.close();
  await waitFor('eu-west-1 unhealthy', () => health(EU.name).state === 'unhealthy');
  expect(health(EU.name).lastError).toMatch(/ECONNREFUSED/);
  // From eu-west-1 the next nearest is us-east-1.
  expect(await api(EU.client)).toEqual([US.address]);
});

test('when every region is unhealthy, all count as healthy again (Route 53 rule)', async () => {
  Object.values(lbs).forEach((lb) => lb.respondWith(503));
  await waitFor('every region unhealthy', () => dns.status().regions.every((r) => r.state === 'unhealthy'));
  // Latency routing then answers the nearest record, healthy or not.
  for (const r of REGIONS) expect(await api(r.client)).toEqual([r.address]);
  const seen = new Set<string>();
  for (let i = 0; i < 60 && seen.size < REGIONS.length; i++) {
    addressesIn(await queryUdp(backup(US.client), 'api-backup.mr-backup.test')).forEach((a) => seen.add(a));
  }
  expect([...seen].sort()).toEqual(REGIONS.map((r) => r.address).sort());

  lbs[AP.name]!.respondWith(200);
  await waitFor('ap-southeast-1 healthy', () => health(AP.name).healthy);
  for (const r of REGIONS) expect(await api(r.client)).toEqual([AP.address]);
});

test('the backup zone answers one healthy region by weight, and names every region on its own', async () => {
  lbs[AP.name]!.respondWith(503);
  await waitFor('ap-southeast-1 unhealthy, others healthy', () =>
    dns.status().regions.every((r) => r.state === (r.region === AP.name ? 'unhealthy' : 'healthy')),
  );
  const seen = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const answer = await queryUdp(backup(AP.client), 'api-backup.mr-backup.test');
    expect(answer.answers).toHaveLength(1);
    expect(answer.answers![0]).toMatchObject({ ttl: TTL });
    const [address] = addressesIn(answer);
    seen.set(address!, (seen.get(address!) ?? 0) + 1);
  }
  expect([...seen.keys()].sort()).toEqual([US.address, EU.address]);
  const soa = await queryTcp(backup(AP.client), 'mr-backup.test', 'SOA');
  expect(soa.answers).toEqual([
    expect.objectContaining({ data: expect.objectContaining({ mname: 'ns-backup.mr-backup.test' }) }),
  ]);
  // Region names in the backup family are simple records, like the primary ones.
  for (const r of REGIONS) {
    expect(addressesIn(await queryUdp(backup(US.client), `${r.name}.api-backup.mr-backup.test`))).toEqual([
      r.address,
    ]);
  }
});

test('a failed zone drops queries over UDP and TCP while the other keeps answering, until restored', async () => {
  await waitFor('every region healthy', () => dns.status().regions.every((r) => r.healthy));
  dns.setZoneFailed('primary', true);
  // Silence, not NXDOMAIN or a refusal: a client's resolver times out, as in a real provider outage.
  await expect(queryUdp(primary(AP.client), 'api.mr.test', 'A', 300)).rejects.toThrow(/no UDP answer/);
  await expect(queryTcp(primary(AP.client), 'ap-southeast-1.api.mr.test', 'A', 300)).rejects.toThrow();
  expect(addressesIn(await queryTcp(backup(AP.client), 'api-backup.mr-backup.test'))).toHaveLength(1);
  expect(addressesIn(await queryUdp(backup(AP.client), 'ap-southeast-1.api-backup.mr-backup.test'))).toEqual([
    AP.address,
  ]);
  expect(dns.status().zones).toMatchObject({ primary: { serving: false }, backup: { serving: true } });
  expect(dns.resolveFor(AP.client, 'api.mr.test')).toEqual([]);
  expect(dns.status().apiAnswers).toContainEqual({
    location: AP.name,
    address: null,
    backupAddress: expect.any(String),
  });

  dns.setZoneFailed('primary', false);
  dns.setZoneFailed('backup', true);
  expect(addressesIn(await queryUdp(primary(AP.client), 'api.mr.test'))).toEqual([AP.address]);
  await expect(queryUdp(backup(AP.client), 'api-backup.mr-backup.test', 'A', 300)).rejects.toThrow(
    /no UDP answer/,
  );
  expect(dns.status().zones).toMatchObject({ primary: { serving: true }, backup: { serving: false } });
  dns.setZoneFailed('backup', false);
  expect(addressesIn(await queryUdp(backup(AP.client), 'api-backup.mr-backup.test'))).toHaveLength(1);
});

test('health, transitions and recent answers are visible through status() and GET /status', async () => {
  await waitFor('every region healthy', () => dns.status().regions.every((r) => r.healthy));
  await api(EU.client);
  expect(dns.resolveFor(AP.client, 'api.mr.test')).toEqual([AP.address]);
  expect(dns.resolveFor(AP.client, 'api.mr.test', 'AAAA')).toEqual([]);
  expect(dns.resolveFor(AP.client, 'api-backup.mr-backup.test')).toHaveLength(1);

  const res = await fetch(`http://${DNS_ADDRESS}:${dns.ports.status}/status`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as ReturnType<DnsEmulator['status']>;
  expect(body.healthCheck).toEqual({ intervalMs: 100, failureThreshold: THRESHOLD });
  expect(body.regions.map((r) => [r.region, r.url, r.healthy])).toEqual(
    REGIONS.map((r) => [r.name, `http://${r.address}:${lbs[US.name]!.port}/health`, true]),
  );
  expect(body.transitions.filter((t) => t.to === 'healthy')).toHaveLength(REGIONS.length);
  expect(body.apiAnswers).toEqual(
    REGIONS.map((r) => ({ location: r.name, address: r.address, backupAddress: expect.any(String) })),
  );
  expect(body.recentAnswers).toContainEqual(
    expect.objectContaining({
      zone: 'primary',
      source: EU.client,
      location: EU.name,
      rcode: 'NOERROR',
      addresses: [EU.address],
    }),
  );
  expect((await fetch(`http://${DNS_ADDRESS}:${dns.ports.status}/nope`)).status).toBe(404);
});

test('garbage and non-query packets get FORMERR and NOTIMP, not silence or a crash', async () => {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((r) => socket.bind(0, EU.client, () => r()));
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
  socket.send(header, dns.ports.primary, DNS_ADDRESS);
  const notify = dnsPacket.encode({
    type: 'query',
    id: 7,
    flags: 4 << 11,
    questions: [{ type: 'SOA', name: 'mr.test' }],
  });
  socket.send(notify, dns.ports.primary, DNS_ADDRESS);
  await waitFor('two replies', () => replies.length === 2);
  socket.close();
  const decoded = replies.map((r) => dnsPacket.decode(r) as DnsReply);
  expect(decoded.find((p) => p.id === 0x1234)?.rcode).toBe('FORMERR');
  expect(decoded.find((p) => p.id === 7)?.rcode).toBe('NOTIMP');
  expect(await api(EU.client)).toEqual([EU.address]);
});

test('a region list outside the config is refused with the regions it may use', async () => {
  const config = parseDeploymentConfig({});
  await expect(startDnsEmulator({ config, regions: ['eu-west-2'], port: 0, backupPort: 0 })).rejects.toThrow(
    /non-empty subset of the configured regions \(us-east-1, eu-west-1, ap-southeast-1\), got \[eu-west-2\]/,
  );
});
