/**
 * Where every process of the local stack lives: which configured regions run, each region's LB URL,
 * DynamoDB endpoint and TURN relay, and each media server's id, signaling port and RTC port range. Arithmetic on the
 * topology only, so the supervisor, the state file and the dashboard all read the same answer.
 */
import type { LocalRegionAddress, LocalTopology } from './topology';

/** Each media server gets this many RTC ports (one per WebRtcTransport on the legacy engine). */
const RTC_PORTS_PER_SERVER = 1000;

export interface LocalMediaServer {
  readonly id: string;
  readonly signalingPort: number;
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
}

export interface LocalRegion {
  readonly name: string;
  readonly address: string;
  /**
   * The LB by address: for the stack's own health probes and the browser demo (a browser cannot use
   * the DNS emulator). Node clients use the names below, resolved through the emulator.
   */
  readonly lbUrl: string;
  /** The LB by its primary name, `http://<region>.api.<domain>:<port>`. */
  readonly apiUrl: string;
  /** The LB by its backup name, `http://<region>.api-backup.<backupDomain>:<port>`. */
  readonly backupApiUrl: string;
  readonly dynamoEndpoint: string;
  /** The region's TURN relay (runtime/local/TurnRelay.ts), on the region's address. */
  readonly turn: { readonly host: string; readonly port: number; readonly tlsPort: number };
  readonly media: readonly LocalMediaServer[];
}

export interface RegionLayoutInput {
  readonly regions: readonly LocalRegionAddress[];
  readonly lbPort: number;
  /** The primary and backup zones (the DNS emulator's). */
  readonly domain: string;
  readonly backupDomain: string;
  readonly mediaPortBase: number;
  readonly mediaPerRegion: number;
  readonly turnPort: number;
  readonly turnTlsPort: number;
  /** Region name → its DynamoDB emulator endpoint: known only once the emulators listen. */
  readonly dynamoEndpoints: Readonly<Record<string, string>>;
}

/** The first `count` configured regions (a reduced stack); every configured region by default. */
export function runningRegions(topology: LocalTopology, count?: number): LocalRegionAddress[] {
  return topology.regions.slice(0, count ?? topology.regions.length);
}

export function regionLayout(input: RegionLayoutInput): LocalRegion[] {
  return input.regions.map((r) => ({
    name: r.name,
    address: r.address,
    lbUrl: `http://${r.address}:${input.lbPort}`,
    apiUrl: `http://${r.name}.api.${input.domain}:${input.lbPort}`,
    backupApiUrl: `http://${r.name}.api-backup.${input.backupDomain}:${input.lbPort}`,
    dynamoEndpoint: input.dynamoEndpoints[r.name]!,
    turn: { host: r.address, port: input.turnPort, tlsPort: input.turnTlsPort },
    media: mediaServers(r.name, input.mediaPerRegion, input.mediaPortBase),
  }));
}

/**
 * Every region uses the same ports on its own address: signaling ports count up from the base, and the
 * RTC ranges sit above them, one block per server, so no two servers of a region share a port.
 */
function mediaServers(region: string, count: number, portBase: number): LocalMediaServer[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${region}-m${i}`,
    signalingPort: portBase + i,
    rtcMinPort: portBase + RTC_PORTS_PER_SERVER * (i + 1),
    rtcMaxPort: portBase + RTC_PORTS_PER_SERVER * (i + 2) - 1,
  }));
}
