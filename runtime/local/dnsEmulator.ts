/**
 * The local Route 53: the primary zone (`api.<domain>` latency records, `<region>.api.<domain>`) and the
 * backup zone (`api-backup.<backupDomain>` weighted records, `<region>.api-backup.<backupDomain>`) on
 * their own servers, both answering from one set of health checks that probe each region's LB
 * `/health` by address (the ALB's own name on AWS), never through either zone.
 *
 * The two servers share the health view but nothing else: failing one zone (`setZoneFailed`) makes its
 * server drop every query, as a DNS provider in an outage does, while the other keeps answering.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalStackConfig } from './topology';
import {
  answerQuestion,
  backupZone,
  type DnsRegion,
  locateClient,
  primaryZone,
  type Zone,
  type ZoneName,
} from './dnsRecords';
import { DnsServer, type DnsQueryInfo, type Transport } from './DnsServer';
import { HealthChecker, type HealthTransition, type Probe, type RegionHealth } from './HealthChecker';

const RECENT_ANSWERS = 100;

export interface DnsEmulatorOptions {
  readonly config: LocalStackConfig;
  /** The configured regions that run (a reduced stack). @default every region in the config */
  readonly regions?: readonly string[];
  /** @default config.local.dnsAddress */
  readonly address?: string;
  /** Primary zone port; 0 picks a free one. @default config.local.dnsPort */
  readonly port?: number;
  /** Backup zone port; 0 picks a free one. @default config.local.backupDnsPort */
  readonly backupPort?: number;
  /** Serves `GET /status` (JSON) on the DNS address when set; 0 picks a free port. @default no endpoint */
  readonly statusPort?: number;
  /** @default config.local.healthCheckIntervalSeconds */
  readonly intervalMs?: number;
  /** @default config.healthCheck.failureThreshold */
  readonly failureThreshold?: number;
  /** @default see HealthChecker */
  readonly probeTimeoutMs?: number;
  /** Replaces the HTTP probe of `http://<region address>:<lbPort>/health`. */
  readonly probe?: (region: string) => Promise<boolean>;
  /** Location of clients whose source address is in no region's /24 (e.g. 127.0.0.1). @default first region */
  readonly defaultLocation?: string;
  /** [0, 1) for weighted picks. @default Math.random */
  readonly random?: () => number;
  readonly onTransition?: (transition: HealthTransition) => void;
  /** @default logs to stderr */
  readonly onError?: (err: Error, context: string) => void;
}

export interface DnsAnswerLog {
  readonly at: number;
  readonly zone: ZoneName;
  readonly transport: Transport;
  readonly source: string;
  readonly location: string;
  readonly name: string;
  readonly type: string;
  readonly rcode: string;
  readonly addresses: string[];
}

export interface ZoneStatus {
  readonly apex: string;
  readonly address: string;
  readonly port: number;
  /** False while the zone is failed: its server drops every query. */
  readonly serving: boolean;
  /** Replies its server has sent since it started. */
  readonly answered: number;
}

/** What each family's global name answers a client at one location; null while its zone is failed. */
export interface LocationAnswers {
  readonly location: string;
  readonly address: string | null;
  readonly backupAddress: string | null;
}

export interface DnsEmulatorStatus {
  readonly zones: Record<ZoneName, ZoneStatus>;
  readonly healthCheck: { readonly intervalMs: number; readonly failureThreshold: number };
  readonly regions: RegionHealth[];
  readonly transitions: HealthTransition[];
  /** Every time a zone was failed or restored. */
  readonly zoneChanges: { readonly at: number; readonly zone: ZoneName; readonly failed: boolean }[];
  /** What `api.<domain>` and `api-backup.<backupDomain>` answer right now for a client in each region. */
  readonly apiAnswers: LocationAnswers[];
  /** The most recent answers to real queries, oldest first. */
  readonly recentAnswers: DnsAnswerLog[];
}

export interface DnsEmulator {
  readonly ports: { readonly primary: number; readonly backup: number; readonly status?: number };
  status(): DnsEmulatorStatus;
  /**
   * The A addresses a client at `sourceAddress` gets for `name` now ([] for NXDOMAIN or no data, and for
   * every name of a failed zone).
   */
  resolveFor(sourceAddress: string, name: string, type?: string): string[];
  /** Fails one zone (a DNS provider outage: queries dropped, over UDP and TCP) or restores it. */
  setZoneFailed(zone: ZoneName, failed: boolean): void;
  close(): Promise<void>;
}

export async function startDnsEmulator(opts: DnsEmulatorOptions): Promise<DnsEmulator> {
  const { config } = opts;
  const local = config.local;
  const regions = selectRegions(config, opts.regions);
  const address = opts.address ?? local.dnsAddress;
  const zoneOptions = { ttlSeconds: local.dnsTtlSeconds, regions, serverAddress: address };
  const zones: Record<ZoneName, Zone> = {
    primary: primaryZone({ ...zoneOptions, domain: local.domain }),
    backup: backupZone({ ...zoneOptions, domain: local.backupDomain }),
  };
  const defaultLocation = opts.defaultLocation ?? regions[0]!.name;
  const random = opts.random ?? Math.random;
  const onError =
    opts.onError ?? ((err, context) => console.error(`[dns-emulator] ${context}: ${err.message}`));
  const intervalMs = opts.intervalMs ?? local.healthCheckIntervalSeconds * 1000;
  const failureThreshold = opts.failureThreshold ?? config.healthCheck.failureThreshold;

  const customProbe = opts.probe;
  const probe: Probe | undefined = customProbe
    ? async (target) =>
        (await customProbe(target.region))
          ? { ok: true, detail: 'probe ok' }
          : { ok: false, detail: 'probe failed' }
    : undefined;
  const checker = new HealthChecker({
    targets: regions.map((r) => ({ region: r.name, url: `http://${r.address}:${local.lbPort}/health` })),
    intervalMs,
    failureThreshold,
    timeoutMs: opts.probeTimeoutMs,
    probe,
    onTransition: opts.onTransition,
  });

  const recent: DnsAnswerLog[] = [];
  const zoneChanges: DnsEmulatorStatus['zoneChanges'] = [];
  const resolve = (zone: ZoneName, query: DnsQueryInfo) => {
    const location = locateClient(query.source, regions, defaultLocation);
    const answer = answerQuestion(zones[zone], query, {
      location,
      isHealthy: (r) => checker.isRoutable(r),
      random,
    });
    return { location, answer };
  };
  const answerer = (zone: ZoneName) => (query: DnsQueryInfo) => {
    const { location, answer } = resolve(zone, query);
    recent.push({
      at: Date.now(),
      zone,
      transport: query.transport,
      source: query.source,
      location,
      name: query.name,
      type: query.type,
      rcode: answer.rcode,
      addresses: addressesOf(answer.answers),
    });
    if (recent.length > RECENT_ANSWERS) recent.shift();
    return answer;
  };

  const servers: Partial<Record<ZoneName, DnsServer>> = {};
  let statusServer: http.Server | undefined;
  const closeAll = async () => {
    checker.stop();
    await Promise.all([
      servers.primary?.close(),
      servers.backup?.close(),
      statusServer && closeHttp(statusServer),
    ]);
  };
  const serving = (zone: ZoneName): boolean => servers[zone] !== undefined && !servers[zone].failed;
  const globalName: Record<ZoneName, string> = {
    primary: `api.${zones.primary.apex}`,
    backup: `api-backup.${zones.backup.apex}`,
  };
  const answerAt = (zone: ZoneName, source: string): string | null =>
    serving(zone)
      ? (addressesOf(
          resolve(zone, { name: globalName[zone], type: 'A', source, transport: 'udp' }).answer.answers,
        )[0] ?? null)
      : null;

  const status = (): DnsEmulatorStatus => ({
    zones: {
      primary: {
        apex: zones.primary.apex,
        address,
        port: servers.primary!.port,
        serving: serving('primary'),
        answered: servers.primary!.answered,
      },
      backup: {
        apex: zones.backup.apex,
        address,
        port: servers.backup!.port,
        serving: serving('backup'),
        answered: servers.backup!.answered,
      },
    },
    healthCheck: { intervalMs, failureThreshold },
    regions: checker.status(),
    transitions: checker.transitions(),
    zoneChanges: [...zoneChanges],
    apiAnswers: regions.map((r) => ({
      location: r.name,
      address: answerAt('primary', r.address),
      backupAddress: answerAt('backup', r.address),
    })),
    recentAnswers: [...recent],
  });

  try {
    for (const zone of ['primary', 'backup'] as const) {
      const port =
        zone === 'primary' ? (opts.port ?? local.dnsPort) : (opts.backupPort ?? local.backupDnsPort);
      servers[zone] = await DnsServer.start({
        address,
        port,
        answer: answerer(zone),
        onError: (err) => onError(err, `${zone} zone server`),
      });
    }
    if (opts.statusPort !== undefined)
      statusServer = await startStatusServer(address, opts.statusPort, status);
  } catch (err) {
    await closeAll();
    throw err;
  }
  checker.start();

  return {
    ports: {
      primary: servers.primary!.port,
      backup: servers.backup!.port,
      status: statusServer ? (statusServer.address() as AddressInfo).port : undefined,
    },
    status,
    resolveFor: (sourceAddress, name, type = 'A') => {
      const zone = zoneOfName(name, zones.backup.apex);
      if (!serving(zone)) return [];
      return addressesOf(
        resolve(zone, { name, type, source: sourceAddress, transport: 'udp' }).answer.answers,
      );
    },
    setZoneFailed: (zone, failed) => {
      servers[zone]!.failed = failed;
      zoneChanges.push({ at: Date.now(), zone, failed });
    },
    close: closeAll,
  };
}

function selectRegions(config: LocalStackConfig, names: readonly string[] | undefined): DnsRegion[] {
  if (!names) return [...config.local.regions];
  const configured = config.local.regions.map((r) => r.name as string);
  const unknown = names.filter((n) => !configured.includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(
      `regions must be a non-empty subset of the configured regions (${configured.join(', ')}), got [${names.join(', ')}]`,
    );
  }
  return config.local.regions.filter((r) => names.includes(r.name));
}

function zoneOfName(name: string, backupApex: string): ZoneName {
  const n = name.toLowerCase().replace(/\.$/, '');
  return n === backupApex || n.endsWith(`.${backupApex}`) ? 'backup' : 'primary';
}

function addressesOf(answers: readonly { type: string; data?: unknown }[]): string[] {
  return answers.filter((a) => a.type === 'A').map((a) => a.data as string);
}

async function startStatusServer(
  address: string,
  port: number,
  status: () => DnsEmulatorStatus,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const found = req.method === 'GET' && (req.url === '/status' || req.url === '/');
    const body = found
      ? status()
      : { error: { code: 'not_found', message: 'the DNS emulator serves GET /status only' } };
    res.writeHead(found ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return server;
}

function closeHttp(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
