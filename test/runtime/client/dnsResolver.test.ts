import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ApiClient } from '../../../runtime/client/ApiClient';
import { ZoneDnsResolver } from '../../../runtime/client/DnsResolver';
import { ApiUnavailableError } from '../../../runtime/client/errors';
import { nodePlatform } from '../../../runtime/client/nodePlatform';
import { type TestDnsServer, startDnsServer } from './dnsServer';
import { type TestHttpServer, json, startHttpServer } from './httpServers';

describe('Node DNS through configured servers', () => {
  let primaryZone: TestDnsServer;
  let backupZone: TestDnsServer;
  const cleanups: Array<() => unknown> = [];

  beforeEach(async () => {
    primaryZone = await startDnsServer({
      'api.mr.test': { addresses: ['127.0.0.1', '127.0.0.2'], ttl: 5 },
      'eu-west-1.api.mr.test': { addresses: ['127.0.2.1'], ttl: 0 },
    });
    backupZone = await startDnsServer({ 'api-backup.mr.test': { addresses: ['127.0.0.3'], ttl: 5 } });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await Promise.all([primaryZone.close(), backupZone.close()]);
  });

  function resolver(opts: { now?: () => number; localAddress?: string } = {}) {
    const r = new ZoneDnsResolver({
      servers: { 'api-backup.mr.test': backupZone.address, 'mr.test': primaryZone.address },
      maxCacheSeconds: 60,
      ...opts,
    });
    cleanups.push(() => r.close());
    return r;
  }

  it('asks the server of the longest matching zone and keeps the answer order', async () => {
    const r = resolver();
    await expect(r.resolve('api.mr.test')).resolves.toEqual(['127.0.0.1', '127.0.0.2']);
    await expect(r.resolve('api-backup.mr.test')).resolves.toEqual(['127.0.0.3']);
    await expect(r.resolve('EU-WEST-1.api.mr.test.')).resolves.toEqual(['127.0.2.1']);
    expect(primaryZone.queries.map((q) => q.name)).toEqual(['api.mr.test', 'eu-west-1.api.mr.test']);
    expect(backupZone.queries.map((q) => q.name)).toEqual(['api-backup.mr.test']);
  });

  it('leaves IP literals, localhost and names outside every zone to the system', async () => {
    const r = resolver();
    expect(r.serverFor('127.0.0.1')).toBeUndefined();
    expect(r.serverFor('localhost')).toBeUndefined();
    expect(r.serverFor('example.com')).toBeUndefined();
    expect(r.serverFor('notmr.test')).toBeUndefined();
    await expect(r.resolve('localhost')).resolves.toContain('127.0.0.1');
    expect(primaryZone.queries).toEqual([]);
  });

  it('caches for the TTL (never past it) and not at all for TTL 0', async () => {
    let now = 1_000_000;
    const r = resolver({ now: () => now });
    await r.resolve('api.mr.test');
    await r.resolve('api.mr.test');
    expect(primaryZone.queries).toHaveLength(1);
    now += 4_900;
    await r.resolve('api.mr.test');
    expect(primaryZone.queries).toHaveLength(1);
    now += 200; // past the 5 s TTL: a DNS failover must reach the client
    primaryZone.records.set('api.mr.test', { addresses: ['127.0.0.2'], ttl: 5 });
    await expect(r.resolve('api.mr.test')).resolves.toEqual(['127.0.0.2']);
    expect(primaryZone.queries).toHaveLength(2);
    await r.resolve('eu-west-1.api.mr.test');
    await r.resolve('eu-west-1.api.mr.test');
    expect(primaryZone.queries.filter((q) => q.name === 'eu-west-1.api.mr.test')).toHaveLength(2);
  });

  it('shares one query between concurrent lookups of a name', async () => {
    const r = resolver();
    await Promise.all([r.resolve('api.mr.test'), r.resolve('api.mr.test'), r.resolve('api.mr.test')]);
    expect(primaryZone.queries).toHaveLength(1);
  });

  it('sends queries from the configured source address', async () => {
    await resolver({ localAddress: '127.0.2.100' }).resolve('api.mr.test');
    expect(primaryZone.queries[0]!.from).toBe('127.0.2.100');
  });

  it('fails with ENOTFOUND for an unknown name', async () => {
    await expect(resolver().resolve('nowhere.mr.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('the Node platform connects HTTP and WebSockets by name, from the source address, through the zone servers', async () => {
    const seen: string[] = [];
    const api: TestHttpServer = await startHttpServer((req, _body, res) => {
      seen.push(req.socket.remoteAddress!);
      json(res, 200, { host: req.headers.host });
    });
    cleanups.push(() => api.close());
    const platform = nodePlatform({
      localAddress: '127.0.3.100',
      dns: { servers: { 'mr.test': primaryZone.address }, maxCacheSeconds: 60 },
    });
    cleanups.push(() => platform.close());
    const client = new ApiClient({
      http: platform.http,
      apiUrls: [`http://api.mr.test:${api.port}`],
      attemptMs: 2_000,
      hedgeMs: 60_000,
      primaryReprobeMs: 60_000,
    });
    cleanups.push(() => client.close());
    await expect(client.call('/v1/ping')).resolves.toMatchObject({
      data: { host: `api.mr.test:${api.port}` },
    });
    expect(seen).toEqual(['127.0.3.100']);
    expect(primaryZone.queries[0]).toMatchObject({ name: 'api.mr.test', from: '127.0.3.100' });

    const wsHttp = http.createServer();
    const wss = new WebSocketServer({ server: wsHttp });
    const peers: string[] = [];
    wss.on('connection', (ws, req) => {
      peers.push(req.socket.remoteAddress!);
      ws.send('hello');
    });
    // eu-west-1.api.mr.test resolves to 127.0.2.1: the region's own loopback address.
    await new Promise<void>((resolve) => wsHttp.listen(0, '127.0.2.1', resolve));
    cleanups.push(() => new Promise((resolve) => wss.close(() => wsHttp.close(resolve))));
    const { port } = wsHttp.address() as AddressInfo;
    const message = await new Promise<string>((resolve, reject) => {
      const socket = platform.openSocket(`ws://eu-west-1.api.mr.test:${port}/v1/rooms/r/signal`, [], {
        onOpen: () => undefined,
        onMessage: (text) => {
          socket.close(1000, 'done');
          resolve(text);
        },
        onClose: (code, reason) => reject(new Error(`closed ${code} ${reason}`)),
      });
    });
    expect(message).toBe('hello');
    expect(peers).toEqual(['127.0.3.100']);
  });

  it('a name the zone does not know fails the attempt as a network error', async () => {
    const platform = nodePlatform({
      dns: { servers: { 'mr.test': primaryZone.address }, maxCacheSeconds: 60 },
    });
    cleanups.push(() => platform.close());
    const client = new ApiClient({
      http: platform.http,
      apiUrls: ['http://missing.mr.test:8080'],
      attemptMs: 2_000,
      hedgeMs: 60_000,
      primaryReprobeMs: 60_000,
    });
    const err = (await client.call('/v1/ping').catch((e: unknown) => e)) as ApiUnavailableError;
    expect(err).toBeInstanceOf(ApiUnavailableError);
    expect(err.attempts[0]).toMatchObject({
      outcome: 'network_error',
      detail: expect.stringContaining('ENOTFOUND'),
    });
  });
});
