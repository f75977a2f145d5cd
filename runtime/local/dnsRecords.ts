/**
 * The records the CDK declares in Route 53, built from the deployment config, and how Route 53 answers
 * them. Pure: the wire server and the status view both answer through `answerQuestion`.
 *
 * Route 53 rules kept here:
 *   - latency records answer the one healthy record nearest to the client (here: the client's region,
 *     told by its source address, and the static region distance table);
 *   - weighted records answer one healthy record picked by weight;
 *   - when every record of a set is unhealthy, all count as healthy and the policy picks among them;
 *   - negative answers carry the zone's SOA, whose minimum is the negative-caching TTL.
 *
 * The two zones have their own apexes (`domain`, `backupDomain`) and their own servers, so neither
 * knows the other's names and either can fail alone.
 */
import type { Answer } from 'dns-packet';
import { byDistanceFrom } from '../protocol/regions';

export interface DnsRegion {
  readonly name: string;
  readonly address: string;
}

export type RecordSet =
  | { readonly name: string; readonly policy: 'simple'; readonly address: string }
  | { readonly name: string; readonly policy: 'latency'; readonly targets: readonly DnsRegion[] }
  | {
      readonly name: string;
      readonly policy: 'weighted';
      readonly targets: readonly (DnsRegion & { readonly weight: number })[];
    };

export type ZoneName = 'primary' | 'backup';

export interface Zone {
  readonly zone: ZoneName;
  readonly apex: string;
  readonly ttlSeconds: number;
  /** The zone's name server host, answered at the apex NS and as an A record. */
  readonly nameserver: string;
  readonly nameserverAddress: string;
  readonly records: readonly RecordSet[];
}

export interface ZoneOptions {
  readonly domain: string;
  readonly ttlSeconds: number;
  readonly regions: readonly DnsRegion[];
  /** Address the zone's server listens on. */
  readonly serverAddress: string;
}

/** `api.<domain>` latency records, one per region, and `<region>.api.<domain>` simple records. */
export function primaryZone(opts: ZoneOptions): Zone {
  const apex = normalize(opts.domain);
  return {
    zone: 'primary',
    apex,
    ttlSeconds: opts.ttlSeconds,
    nameserver: `ns1.${apex}`,
    nameserverAddress: opts.serverAddress,
    records: [
      { name: `api.${apex}`, policy: 'latency', targets: opts.regions },
      ...opts.regions.map((r) => ({
        name: `${r.name}.api.${apex}`,
        policy: 'simple' as const,
        address: r.address,
      })),
    ],
  };
}

/**
 * `api-backup.<domain>` weighted records, equal weights, one per region, and
 * `<region>.api-backup.<domain>` simple records: the backup family names every region too, so a client
 * that has only this zone can still signal and rejoin by name.
 */
export function backupZone(opts: ZoneOptions): Zone {
  const apex = normalize(opts.domain);
  return {
    zone: 'backup',
    apex,
    ttlSeconds: opts.ttlSeconds,
    nameserver: `ns-backup.${apex}`,
    nameserverAddress: opts.serverAddress,
    records: [
      {
        name: `api-backup.${apex}`,
        policy: 'weighted',
        targets: opts.regions.map((r) => ({ ...r, weight: 1 })),
      },
      ...opts.regions.map((r) => ({
        name: `${r.name}.api-backup.${apex}`,
        policy: 'simple' as const,
        address: r.address,
      })),
    ],
  };
}

/**
 * The client's location: the region whose /24 holds its source address (127.0.n.x → region n in the
 * default topology); `fallback` for any other source.
 */
export function locateClient(sourceAddress: string, regions: readonly DnsRegion[], fallback: string): string {
  const source = sourceAddress.replace(/^::ffff:/, '');
  const network = (address: string) => address.split('.').slice(0, 3).join('.');
  return regions.find((r) => network(r.address) === network(source))?.name ?? fallback;
}

export interface QueryContext {
  /** Region the client is in. */
  readonly location: string;
  /** Whether a region's health check lets Route 53 answer it. */
  readonly isHealthy: (region: string) => boolean;
  /** [0, 1), for weighted picks. */
  readonly random: () => number;
}

export interface ZoneAnswer {
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  /** False only for names outside the zone. */
  readonly authoritative: boolean;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
}

export function answerQuestion(
  zone: Zone,
  question: { name: string; type: string },
  ctx: QueryContext,
): ZoneAnswer {
  const name = normalize(question.name);
  const empty = { answers: [], authorities: [], additionals: [] };
  if (name !== zone.apex && !name.endsWith(`.${zone.apex}`))
    return { rcode: 'NXDOMAIN', authoritative: false, ...empty };

  const ttl = zone.ttlSeconds;
  const owned: Answer[] = [];
  if (name === zone.apex) {
    owned.push(soa(zone, question.name), { type: 'NS', name: question.name, ttl, data: zone.nameserver });
  }
  if (name === zone.nameserver)
    owned.push({ type: 'A', name: question.name, ttl, data: zone.nameserverAddress });
  const set = zone.records.find((r) => r.name === name);
  if (set) owned.push({ type: 'A', name: question.name, ttl, data: resolveSet(set, ctx) });

  const exists = owned.length > 0 || zone.records.some((r) => r.name.endsWith(`.${name}`));
  const answers = owned.filter((a) => question.type === 'ANY' || a.type === question.type);
  if (answers.length === 0) {
    return {
      rcode: exists ? 'NOERROR' : 'NXDOMAIN',
      authoritative: true,
      ...empty,
      authorities: [soa(zone, zone.apex)],
    };
  }
  const additionals: Answer[] =
    question.type === 'NS' ? [{ type: 'A', name: zone.nameserver, ttl, data: zone.nameserverAddress }] : [];
  return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals };
}

/** The one address Route 53 answers for a record set. */
function resolveSet(set: RecordSet, ctx: QueryContext): string {
  if (set.policy === 'simple') return set.address;
  if (set.policy === 'latency') {
    const pool = routable(set.targets, ctx);
    const nearest = byDistanceFrom(
      ctx.location,
      pool.map((t) => t.name),
    )[0];
    return pool.find((t) => t.name === nearest)!.address;
  }
  const pool = routable(set.targets, ctx);
  const total = pool.reduce((sum, t) => sum + t.weight, 0);
  let pick = ctx.random() * total;
  for (const target of pool) {
    pick -= target.weight;
    if (pick < 0) return target.address;
  }
  return pool[pool.length - 1]!.address;
}

/** The healthy targets; all of them when none is healthy (Route 53 then treats every record as healthy). */
function routable<T extends DnsRegion>(targets: readonly T[], ctx: QueryContext): readonly T[] {
  const healthy = targets.filter((t) => ctx.isHealthy(t.name));
  return healthy.length > 0 ? healthy : targets;
}

function soa(zone: Zone, owner: string): Answer {
  return {
    type: 'SOA',
    name: owner,
    ttl: zone.ttlSeconds,
    // Route 53's SOA values, except the negative-caching TTL: a failover must not be cached for a day.
    data: {
      mname: zone.nameserver,
      rname: `hostmaster.${zone.apex}`,
      serial: 1,
      refresh: 7200,
      retry: 900,
      expire: 1_209_600,
      minimum: zone.ttlSeconds,
    },
  };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
