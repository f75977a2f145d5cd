/**
 * What the local stack needs to know of the deployment config: the table's name, the health-check
 * threshold Route 53 would apply, and the local topology (addresses, ports, lag, DNS names). The
 * config's schema lives with the CDK app (lib/config.ts, parsed by the scripts); the local stack takes
 * this slice of it, so nothing under runtime/ depends on the CDK code.
 */

export interface LocalRegionAddress {
  readonly name: string;
  /** Loopback address every process of this region binds to. */
  readonly address: string;
}

export interface LocalTopology {
  /** Primary zone the DNS emulator serves: api.<domain>, <region>.api.<domain>. */
  readonly domain: string;
  /** Backup zone, on its own port: api-backup.<backupDomain>, <region>.api-backup.<backupDomain>. */
  readonly backupDomain: string;
  readonly regions: readonly LocalRegionAddress[];
  readonly lbPort: number;
  readonly dynamoPort: number;
  readonly mediaPortBase: number;
  readonly mediaServersPerRegion: number;
  readonly dnsAddress: string;
  readonly dnsPort: number;
  readonly backupDnsPort: number;
  readonly dashboardPort: number;
  readonly replicationLagMs: number;
  readonly dnsTtlSeconds: number;
  readonly healthCheckIntervalSeconds: number;
  /** Each region's TURN relay: listening ports and the ports it relays from. */
  readonly turnPort: number;
  readonly turnTlsPort: number;
  readonly turnRelayPortMin: number;
  readonly turnRelayPortMax: number;
}

export interface LocalStackConfig {
  readonly tableName: string;
  readonly healthCheck: { readonly failureThreshold: number };
  /** Lifetime of the TURN credentials join answers carry, as on AWS. */
  readonly turn: { readonly credentialTtlSeconds: number };
  readonly local: LocalTopology;
}
