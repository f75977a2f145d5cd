/**
 * Node only: resolves hostnames through configured DNS servers instead of the system resolver, so a
 * client on the local stack asks the Route 53 emulator (and, through its source address, tells the
 * emulator where it is), exactly as a real client asks Route 53 through its recursive resolver.
 *
 * - Zones: a name uses the server of its longest matching zone (`api-backup.mr.test` before
 *   `mr.test`); `*` matches every name; a name matching no zone, an IP literal or `localhost` goes to
 *   the system resolver.
 * - Caching honours the answer's TTL (capped), because failover by DNS only works if clients ask again
 *   when the TTL runs out, and not before. Concurrent lookups of one name share one query.
 * - IPv4 only: every name the platform serves has A records.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';

/** How long one query waits for an answer before c-ares retries it. */
const DNS_QUERY_TIMEOUT_MS = 1_000;
/** Queries per lookup (the first plus retries): a dropped UDP answer should not fail a join. */
const DNS_QUERY_TRIES = 2;
/** Bound on cached names; a client talks to a handful of names. */
const MAX_CACHED_NAMES = 256;

export interface ZoneDnsResolverOptions {
  /** Zone (or `*`) → `ipv4:port`. */
  readonly servers: Readonly<Record<string, string>>;
  /** Source address of the queries. */
  readonly localAddress?: string;
  readonly maxCacheSeconds: number;
  readonly now?: () => number;
}

interface CachedAnswer {
  readonly addresses: string[];
  readonly expiresAt: number;
}

export class ZoneDnsResolver {
  private readonly resolvers = new Map<string, dns.promises.Resolver>();
  private readonly cache = new Map<string, CachedAnswer>();
  private readonly inflight = new Map<string, Promise<string[]>>();
  private readonly zones: readonly [zone: string, server: string][];
  private readonly now: () => number;

  constructor(private readonly options: ZoneDnsResolverOptions) {
    // Longest zone first, `*` last, so the first match is the most specific one.
    this.zones = Object.entries(options.servers)
      .map(([zone, server]) => [zone.toLowerCase().replace(/\.$/, ''), server] as [string, string])
      .sort(([a], [b]) => (a === '*' ? 1 : b === '*' ? -1 : b.length - a.length));
    this.now = options.now ?? Date.now;
  }

  /** The DNS server for `hostname`, or undefined when the system resolver should answer. */
  serverFor(hostname: string): string | undefined {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (net.isIP(name) || name === 'localhost') return undefined;
    return this.zones.find(([zone]) => zone === '*' || name === zone || name.endsWith(`.${zone}`))?.[1];
  }

  /** IPv4 addresses of `hostname` in the server's order (latency records put the best first). */
  async resolve(hostname: string): Promise<string[]> {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    const server = this.serverFor(name);
    if (!server) {
      const answers = await dns.promises.lookup(name, { all: true, family: 4 });
      return answers.map((a) => a.address);
    }
    const cached = this.cache.get(name);
    if (cached && cached.expiresAt > this.now()) return cached.addresses;
    let pending = this.inflight.get(name);
    if (!pending) {
      pending = this.query(name, server).finally(() => this.inflight.delete(name));
      this.inflight.set(name, pending);
    }
    return pending;
  }

  /** A `lookup` for http.request / net.connect / ws options. */
  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    const wantsAll = (options as dns.LookupOptions).all === true;
    const family = (options as dns.LookupOptions).family;
    if (family === 6 || family === 'IPv6') {
      callback(Object.assign(new Error(`no IPv6 address for ${hostname}`), { code: 'ENOTFOUND' }), '', 6);
      return;
    }
    this.resolve(hostname).then(
      (addresses) => {
        if (wantsAll)
          callback(
            null,
            addresses.map((address) => ({ address, family: 4 })),
          );
        else callback(null, addresses[0]!, 4);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 4),
    );
  };

  private async query(name: string, server: string): Promise<string[]> {
    const records = await this.resolverFor(server).resolve4(name, { ttl: true });
    if (records.length === 0) {
      throw Object.assign(new Error(`${name}: no A records at ${server}`), {
        code: 'ENOTFOUND',
        hostname: name,
      });
    }
    const ttlSeconds = Math.min(this.options.maxCacheSeconds, ...records.map((r) => r.ttl));
    const addresses = records.map((r) => r.address);
    if (ttlSeconds > 0) {
      if (this.cache.size >= MAX_CACHED_NAMES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(name, { addresses, expiresAt: this.now() + ttlSeconds * 1000 });
    } else {
      this.cache.delete(name);
    }
    return addresses;
  }

  private resolverFor(server: string): dns.promises.Resolver {
    let resolver = this.resolvers.get(server);
    if (!resolver) {
      resolver = new dns.promises.Resolver({ timeout: DNS_QUERY_TIMEOUT_MS, tries: DNS_QUERY_TRIES });
      resolver.setServers([server]);
      if (this.options.localAddress) resolver.setLocalAddress(this.options.localAddress);
      this.resolvers.set(server, resolver);
    }
    return resolver;
  }

  close(): void {
    for (const resolver of this.resolvers.values()) resolver.cancel();
    this.resolvers.clear();
    this.cache.clear();
  }
}
