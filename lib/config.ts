/**
 * The deployment config: one zod schema read from cdk.json context key `multiRegion` (overridable with
 * `-c multiRegion='{...}'`). The CDK app, the scripts and the local stack all read it through
 * `parseDeploymentConfig`; runtime processes get their slice as environment variables.
 *
 * Defaults never depend on the order or number of regions (VPC CIDRs come from a per-region ordinal),
 * so adding or removing a region leaves every other region's stack unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import {
  TURN_CREDENTIAL_MAX_TTL_S,
  TURN_CREDENTIAL_MIN_TTL_S,
  TURN_CREDENTIAL_TTL_S,
  TURN_PORT,
} from '../runtime/protocol/turnRelayPolicy';
import { AWS_REGIONS, type AwsRegion, isAwsRegion, regionOrdinal } from '../runtime/protocol/regions';

export const CONTEXT_KEY = 'multiRegion';

export const DEFAULT_REGIONS: readonly AwsRegion[] = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const domainName = z
  .string()
  .toLowerCase()
  .refine(
    (d) => d.length <= 253 && d.split('.').length >= 2 && d.split('.').every((l) => DNS_LABEL.test(l)),
    {
      message: 'must be a DNS name such as "example.com"',
    },
  );

const hostedZoneId = z
  .string()
  .regex(/^Z[A-Z0-9]{1,31}$/, 'must be a Route 53 hosted zone id such as "Z0123456789ABC"');

const port = z.number().int().min(1).max(65535);

/**
 * An ACM certificate ARN: `arn:<partition>:acm:<region>:<account>:certificate/<uuid>`. The region is the
 * fourth field; `certificateRegion` reads it.
 */
const ACM_CERTIFICATE_ARN =
  /^arn:aws(?:-cn|-us-gov)?:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const certificateArn = z
  .string()
  .regex(
    ACM_CERTIFICATE_ARN,
    'must be an ACM certificate ARN such as "arn:aws:acm:eu-west-1:<account>:certificate/<uuid>"',
  );

/** The region an ACM certificate ARN names (its fourth field). */
export function certificateRegion(arn: string): string | undefined {
  return ACM_CERTIFICATE_ARN.exec(arn)?.[1];
}

/**
 * Where the backup family (`api-backup.<backupDomain>`, `<region>.api-backup.<backupDomain>` and the TURN
 * relays' backup names) is served.
 *
 * - `route53`: a Route 53 hosted zone of its own. The region stacks write their backup records and health
 *   checks there and validate the backup names' certificates through it.
 * - `external`: a zone at another DNS provider, the only protection against Route 53 itself failing. The
 *   region stacks write nothing to it and validate nothing through it: the operator creates the records
 *   the stacks output (and their health checks) at that provider, and imports into ACM, in each region, a
 *   certificate for the region's backup names (docs/DEPLOY.md, "A backup zone at another DNS provider").
 */
const backupDnsSchema = z.discriminatedUnion('provider', [
  z.object({ provider: z.literal('route53'), hostedZoneId }).strict(),
  z
    .object({
      provider: z.literal('external'),
      /**
       * Per region, the ACM certificate its ALB serves for `api-backup.<backupDomain>` and
       * `<region>.api-backup.<backupDomain>` (and, unless `turnCertificateArns` names another, its TURN
       * relay for `turn.<region>.api-backup.<backupDomain>`). It must live in that region.
       */
      certificateArns: z.record(z.string(), certificateArn),
      /**
       * Per region, a separate certificate for the TURN relay's backup name; regions not listed use their
       * `certificateArns` entry.
       */
      turnCertificateArns: z.record(z.string(), certificateArn).default({}),
    })
    .strict(),
]);

/** The placeholder backup zone id used when the config names no backup DNS (lib/placeholders.ts refuses it). */
export const DEFAULT_BACKUP_HOSTED_ZONE_ID = 'Z0000000000000BACKUP';

/** A browser origin: scheme, host and optional port, exactly as browsers send it in `Origin`. */
const webOrigin = z.string().refine(
  (o) => {
    try {
      const url = new URL(o);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === o;
    } catch {
      return false;
    }
  },
  {
    message:
      'must be an origin such as "https://app.example.com" (scheme and host, no path or trailing slash)',
  },
);

const regionName = z.string().refine(isAwsRegion, {
  message: `must be an AWS region: one of ${AWS_REGIONS.join(', ')}`,
});

const regionObject = z
  .object({
    name: regionName,
    /** VPC CIDR; default 10.<ordinal>.0.0/16, stable per region. */
    vpcCidr: z
      .string()
      .refine((c) => CIDR.test(c) && Number(c.split('/')[1]) >= 16 && Number(c.split('/')[1]) <= 24, {
        message: 'must be an IPv4 CIDR with a prefix from /16 to /24, such as "10.1.0.0/16"',
      })
      .optional(),
    mediaInstanceType: z
      .string()
      .regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'must be an EC2 instance type such as "c6i.xlarge"')
      .default('c6i.xlarge'),
    mediaMinSize: z.number().int().min(0).max(100).default(2),
    mediaMaxSize: z.number().int().min(1).max(500).default(10),
    lbDesiredCount: z.number().int().min(1).max(100).default(2),
  })
  .strict();

/** A region is either its name or an object with overrides. */
const regionEntry = z.union([regionName, regionObject]).transform((entry) => {
  const raw = typeof entry === 'string' ? regionObject.parse({ name: entry }) : entry;
  const name = raw.name as AwsRegion;
  return { ...raw, name, vpcCidr: raw.vpcCidr ?? `10.${regionOrdinal(name)}.0.0/16` };
});

const healthCheckSchema = z
  .object({
    /** Route 53 supports exactly these two intervals. */
    requestIntervalSeconds: z
      .number()
      .refine((v) => v === 10 || v === 30, {
        message: 'Route 53 health checks run every 10 or 30 seconds; use 10 or 30',
      })
      .default(10),
    failureThreshold: z
      .number()
      .int()
      .min(1, 'Route 53 allows a failure threshold from 1 to 10')
      .max(10, 'Route 53 allows a failure threshold from 1 to 10')
      .default(3),
  })
  .strict();

/**
 * Each region's TURN relay (lib/turn-relay.ts): coturn hosts behind a Network Load Balancer. Relaying is
 * network-bound; c6i.large carries up to 12.5 Gbit/s. Two hosts by default, one per AZ.
 */
const turnSchema = z
  .object({
    instanceType: z
      .string()
      .regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'must be an EC2 instance type such as "c6i.large"')
      .default('c6i.large'),
    minSize: z.number().int().min(1, 'keep at least one relay host per region').max(50).default(2),
    maxSize: z.number().int().min(1).max(100).default(4),
    /** Lifetime of the TURN credentials in join answers (runtime/lb/turnCredentials.ts). */
    credentialTtlSeconds: z
      .number()
      .int()
      .min(
        TURN_CREDENTIAL_MIN_TTL_S,
        `must be at least ${TURN_CREDENTIAL_MIN_TTL_S} s: a shorter credential expires before the first allocation refresh`,
      )
      .max(
        TURN_CREDENTIAL_MAX_TTL_S,
        `must be at most ${TURN_CREDENTIAL_MAX_TTL_S} s: a leaked credential must not stay useful for longer than a day`,
      )
      .default(TURN_CREDENTIAL_TTL_S),
    /** UDP ports the relays allocate from (coturn's default range, RFC 5766). */
    relayPortMin: port.default(49152),
    relayPortMax: port.default(65535),
  })
  .strict();

const localSchema = z
  .object({
    /** Primary zone the local DNS emulator serves: api.<domain>, <region>.api.<domain>. */
    domain: domainName.default('mr.test'),
    /**
     * Backup zone, served on its own port: api-backup.<backupDomain>, <region>.api-backup.<backupDomain>.
     * A zone of its own, like the AWS backupDomain, so it can fail (or survive) alone.
     */
    backupDomain: domainName.default('mr-backup.test'),
    /** Loopback address per region; default 127.0.<n>.1 for the n-th configured region. */
    addresses: z.record(z.string(), z.string().regex(IPV4, 'must be an IPv4 loopback address')).default({}),
    lbPort: port.default(8080),
    dynamoPort: port.default(8000),
    mediaPortBase: port.default(9000),
    mediaServersPerRegion: z.number().int().min(1).max(8).default(2),
    dnsAddress: z.string().regex(IPV4).default('127.0.0.1'),
    dnsPort: port.default(5353),
    backupDnsPort: port.default(5354),
    dashboardPort: port.default(3000),
    replicationLagMs: z.number().int().min(0).max(60_000).default(300),
    dnsTtlSeconds: z.number().int().min(0).max(3600).default(5),
    /** Health-check interval of the DNS emulator; default: the AWS `healthCheck.requestIntervalSeconds`. */
    healthCheckIntervalSeconds: z.number().min(0.1).max(30).optional(),
    /** Each region's local TURN relay (runtime/local/TurnRelay.ts), on the region's address. */
    turnPort: port.default(3478),
    turnTlsPort: port.default(5349),
    /** Relay ports: above the local media servers' RTC ports, below Linux's ephemeral range. */
    turnRelayPortMin: port.default(50000),
    turnRelayPortMax: port.default(50999),
  })
  .strict();

/** Route 53 health check ids are UUIDs. */
const HEALTH_CHECK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const monitoringSchema = z
  .object({
    /** Addresses subscribed to every region's alarm topic (and the us-east-1 monitoring stack's). */
    alarmEmails: z
      .array(z.email('must be an email address'))
      .max(10, 'list at most 10 addresses')
      .default([]),
    /**
     * Route 53 health check id per region (the region stacks' `HealthCheckId` output), for the optional
     * us-east-1 monitoring stack: Route 53 publishes health-check metrics in us-east-1 only, so their
     * alarms cannot live in the region stacks. Regions without an id get no health-check alarm.
     */
    healthCheckIds: z
      .record(z.string(), z.string().regex(HEALTH_CHECK_ID, 'must be a Route 53 health check id (a UUID)'))
      .default({}),
  })
  .strict();

const configSchema = z
  .object({
    appName: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{2,30}$/,
        'must be 3-31 lowercase letters, digits or dashes, starting with a letter',
      )
      .default('mrwebrtc'),
    domain: domainName.default('example.com'),
    hostedZoneId: hostedZoneId.default('Z0000000000000EXAMPLE'),
    backupDomain: domainName.default('example.net'),
    /**
     * Shorthand for `backupDns: { provider: 'route53', hostedZoneId }`, kept so existing configs work;
     * set one of the two.
     */
    backupHostedZoneId: hostedZoneId.optional(),
    /** @default - a Route 53 zone, `backupHostedZoneId` (or its placeholder) */
    backupDns: backupDnsSchema.optional(),
    /**
     * Region of the table stack (the global table and the token key sets). No default, on purpose: a
     * default derived from `regions` would move the stack when the list is reordered or shortened, and a
     * moved table stack fails to create (the table and secrets already exist). The AWS path refuses a
     * config without it (`parseAwsDeploymentConfig`); the local stack does not use it.
     */
    tableOwnerRegion: regionName.optional(),
    regions: z
      .array(regionEntry)
      .min(1, 'must list at least one region')
      .prefault([...DEFAULT_REGIONS]),
    healthCheck: healthCheckSchema.prefault({}),
    /** Origins of browser apps that call the API from another origin (CORS); none by default. */
    corsOrigins: z.array(webOrigin).max(50, 'list at most 50 origins').default([]),
    lbContainerPort: port.default(8080),
    mediaSignalingPort: port.default(7000),
    mediaRtcPortMin: port.default(40000),
    mediaRtcPortMax: port.default(49999),
    turn: turnSchema.prefault({}),
    monitoring: monitoringSchema.prefault({}),
    local: localSchema.prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.regions.forEach((r, i) => {
      if (seen.has(r.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['regions', i],
          message: `"${r.name}" is listed twice; list each region once`,
        });
      }
      seen.add(r.name);
      if (r.mediaMinSize > r.mediaMaxSize) {
        ctx.addIssue({
          code: 'custom',
          path: ['regions', i, 'mediaMinSize'],
          message: `is larger than mediaMaxSize (${r.mediaMaxSize}); lower it or raise mediaMaxSize`,
        });
      }
    });
    if (cfg.tableOwnerRegion && !seen.has(cfg.tableOwnerRegion)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tableOwnerRegion'],
        message:
          `is not one of the configured regions (${[...seen].join(', ')}); the table stack holds a replica ` +
          'of its own region, so its region must serve traffic. Removing the owner from regions means ' +
          're-homing the table stack first (docs/DEPLOY.md, "Re-homing the table stack")',
      });
    }
    for (const region of Object.keys(cfg.monitoring.healthCheckIds)) {
      if (!seen.has(region)) {
        ctx.addIssue({
          code: 'custom',
          path: ['monitoring', 'healthCheckIds', region],
          message: `names a region that is not configured (${[...seen].join(', ')}); remove it or add the region`,
        });
      }
    }
    if (cfg.mediaRtcPortMin > cfg.mediaRtcPortMax) {
      ctx.addIssue({
        code: 'custom',
        path: ['mediaRtcPortMin'],
        message: `must not exceed mediaRtcPortMax (${cfg.mediaRtcPortMax})`,
      });
    }
    if (cfg.turn.minSize > cfg.turn.maxSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['turn', 'minSize'],
        message: `is larger than turn.maxSize (${cfg.turn.maxSize}); lower it or raise turn.maxSize`,
      });
    }
    for (const [where, min, max, listening] of [
      ['turn', cfg.turn.relayPortMin, cfg.turn.relayPortMax, [TURN_PORT]],
      [
        'local',
        cfg.local.turnRelayPortMin,
        cfg.local.turnRelayPortMax,
        [cfg.local.turnPort, cfg.local.turnTlsPort],
      ],
    ] as const) {
      const field = where === 'turn' ? 'relayPortMin' : 'turnRelayPortMin';
      if (min > max) {
        ctx.addIssue({
          code: 'custom',
          path: [where, field],
          message: `must not exceed ${max}, the top of the range`,
        });
      } else if (listening.some((p) => p >= min && p <= max)) {
        ctx.addIssue({
          code: 'custom',
          path: [where, field],
          message: `makes a relay range ${min}-${max} that contains the relay's listening port; move the range`,
        });
      }
    }
    if (cfg.backupHostedZoneId !== undefined && cfg.backupDns !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['backupHostedZoneId'],
        message:
          'is set together with backupDns; keep one: for a Route 53 backup zone write backupDns: ' +
          '{ "provider": "route53", "hostedZoneId": "<id>" } (or only backupHostedZoneId), for another DNS ' +
          'provider remove backupHostedZoneId',
      });
    }
    const external = cfg.backupDns?.provider === 'external' ? cfg.backupDns : undefined;
    if (external) {
      for (const field of ['certificateArns', 'turnCertificateArns'] as const) {
        for (const [region, arn] of Object.entries(external[field])) {
          const path = ['backupDns', field, region];
          if (!seen.has(region)) {
            ctx.addIssue({
              code: 'custom',
              path,
              message: `names a region that is not configured (${[...seen].join(', ')}); remove it or add the region`,
            });
          } else if (certificateRegion(arn) !== region) {
            // ACM certificates are regional; a load balancer uses one of its own region only (ACM user
            // guide, "Supported Regions": a certificate is requested or imported in each region, never
            // copied between them).
            ctx.addIssue({
              code: 'custom',
              path,
              message:
                `is a certificate in ${certificateRegion(arn)}, but the ${region} load balancers can only use an ` +
                `ACM certificate of ${region}; import the certificate into ACM in ${region} and use that ARN`,
            });
          }
        }
      }
      const missing = [...seen].filter((r) => !(r in external.certificateArns));
      if (missing.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['backupDns', 'certificateArns'],
          message:
            `has no certificate for ${missing.join(', ')}; with an external backup provider each region's ` +
            'load balancer serves the backup names with a certificate imported into ACM in that region ' +
            '(docs/DEPLOY.md, "A backup zone at another DNS provider")',
        });
      }
    }
    if (cfg.domain === cfg.backupDomain) {
      ctx.addIssue({
        code: 'custom',
        path: ['backupDomain'],
        message: "must differ from domain: the backup name must not share the primary zone's fate",
      });
    }
    const localDomains = [cfg.local.domain, cfg.local.backupDomain];
    if (localDomains.some((d, i) => d === localDomains[1 - i] || d.endsWith(`.${localDomains[1 - i]}`))) {
      ctx.addIssue({
        code: 'custom',
        path: ['local', 'backupDomain'],
        message: `is ${JSON.stringify(cfg.local.backupDomain)}; it must be a zone of its own, neither local.domain (${JSON.stringify(cfg.local.domain)}) nor under or above it`,
      });
    }
  });

export type DeploymentConfigInput = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;
export type RegionConfig = Parsed['regions'][number];
export type HealthCheckConfig = Parsed['healthCheck'];

export interface LocalRegionConfig {
  readonly name: AwsRegion;
  /** Loopback address that every process of this region binds to. */
  readonly address: string;
}

export type LocalConfig = Omit<Parsed['local'], 'addresses' | 'healthCheckIntervalSeconds'> & {
  readonly regions: readonly LocalRegionConfig[];
  readonly healthCheckIntervalSeconds: number;
};

export type MonitoringConfig = Parsed['monitoring'];

/** Where the backup family is served, resolved from `backupDns` or the `backupHostedZoneId` shorthand. */
export type BackupDnsConfig =
  | {
      readonly provider: 'route53';
      readonly hostedZoneId: string;
      /** The config field that set the zone id, for messages that must name what the user wrote. */
      readonly hostedZoneIdField: 'backupHostedZoneId' | 'backupDns.hostedZoneId';
    }
  | {
      readonly provider: 'external';
      readonly certificateArns: Readonly<Record<string, string>>;
      readonly turnCertificateArns: Readonly<Record<string, string>>;
    };
export type TurnConfig = Parsed['turn'];

export type DeploymentConfig = Omit<
  Parsed,
  'tableOwnerRegion' | 'local' | 'backupHostedZoneId' | 'backupDns'
> & {
  readonly backupDns: BackupDnsConfig;
  /** Region of the table stack; always set on the AWS path (`AwsDeploymentConfig`), unused locally. */
  readonly tableOwnerRegion: AwsRegion | undefined;
  /** Name of the global table; fixed so region stacks reference it without cross-region exports. */
  readonly tableName: string;
  /** Key set app backends sign join tokens with and LBs verify them with; replicated to every region. */
  readonly joinTokenKeysSecretName: string;
  /** Key set LBs sign media tokens with and media servers verify them with; replicated to every region. */
  readonly mediaTokenKeysSecretName: string;
  /**
   * Shared secret of the TURN relays (same document shape as the key sets): LBs sign TURN credentials
   * with the current one, relays accept it and the "verify" ones; replicated to every region.
   */
  readonly turnSecretName: string;
  readonly local: LocalConfig;
};

/** The config as the AWS path needs it: the table stack's region is named explicitly. */
export type AwsDeploymentConfig = DeploymentConfig & { readonly tableOwnerRegion: AwsRegion };

/** Thrown for an invalid config; the message lists every problem with field, value and fix. */
export class ConfigError extends Error {
  constructor(
    readonly problems: readonly string[],
    source: string,
  ) {
    super(`Invalid deployment config (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function valueAt(raw: unknown, pathParts: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const key of pathParts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function formatPath(pathParts: readonly PropertyKey[]): string {
  return pathParts.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
}

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = formatPath(issue.path) || '(root)';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove them or fix the spelling`;
  }
  if (issue.code === 'invalid_union') {
    // A region entry: report the name problem, which is what a user gets wrong.
    const nested = issue.errors.flat().find((e) => e.path.length > 0) ?? issue.errors.flat()[0];
    if (nested) return describeIssue({ ...nested, path: [...issue.path, ...nested.path] }, raw);
  }
  const value = valueAt(raw, issue.path);
  return `${where}: got ${show(value)}; ${issue.message.replace(/^Invalid input: /, '')}`;
}

/** Parses and resolves the config; throws ConfigError naming every bad field. */
export function parseDeploymentConfig(
  raw: unknown,
  source = `cdk.json context "${CONTEXT_KEY}"`,
): DeploymentConfig {
  const input = typeof raw === 'string' ? parseJson(raw, source) : (raw ?? {});
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => describeIssue(i, input)),
      source,
    );
  }
  const cfg = result.data;
  const regionNames = cfg.regions.map((r) => r.name);
  const tableOwnerRegion = cfg.tableOwnerRegion as AwsRegion | undefined;
  const { addresses, healthCheckIntervalSeconds, ...localRest } = cfg.local;
  const { backupHostedZoneId, backupDns: backupDnsInput, ...rest } = cfg;
  const backupDns: BackupDnsConfig =
    backupDnsInput?.provider === 'external'
      ? backupDnsInput
      : backupDnsInput
        ? { ...backupDnsInput, hostedZoneIdField: 'backupDns.hostedZoneId' }
        : {
            provider: 'route53',
            hostedZoneId: backupHostedZoneId ?? DEFAULT_BACKUP_HOSTED_ZONE_ID,
            hostedZoneIdField: 'backupHostedZoneId',
          };
  const unknownLocal = Object.keys(addresses).filter((r) => !regionNames.includes(r as AwsRegion));
  if (unknownLocal.length > 0) {
    throw new ConfigError(
      [`local.addresses: ${show(unknownLocal)} are not configured regions; use ${regionNames.join(', ')}`],
      source,
    );
  }
  return {
    ...rest,
    backupDns,
    tableOwnerRegion,
    tableName: `${cfg.appName}-rooms`,
    joinTokenKeysSecretName: `${cfg.appName}/join-token-keys`,
    mediaTokenKeysSecretName: `${cfg.appName}/media-token-keys`,
    turnSecretName: `${cfg.appName}/turn-secret`,
    local: {
      ...localRest,
      regions: regionNames.map((name, i) => ({ name, address: addresses[name] ?? `127.0.${i + 1}.1` })),
      healthCheckIntervalSeconds: healthCheckIntervalSeconds ?? cfg.healthCheck.requestIntervalSeconds,
    },
  };
}

const MISSING_TABLE_OWNER =
  "tableOwnerRegion: missing; the AWS deployment needs the table stack's region named explicitly (it never " +
  'follows the order of regions, so reordering or removing a region cannot move it). Add ' +
  '"tableOwnerRegion": "<one of your regions>", preferably not us-east-1, and keep it for the life of the table';

/**
 * The config as the AWS path (CDK app, `chaos --target aws`) reads it: `parseDeploymentConfig` plus the
 * fields only a deployment needs. Every problem is reported at once.
 */
export function parseAwsDeploymentConfig(
  raw: unknown,
  source = `cdk.json context "${CONTEXT_KEY}"`,
): AwsDeploymentConfig {
  const problems: string[] = [];
  let config: DeploymentConfig | undefined;
  try {
    config = parseDeploymentConfig(raw, source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const input = typeof raw === 'string' ? safeJson(raw) : raw;
  if (valueAt(input, ['tableOwnerRegion']) === undefined) problems.push(MISSING_TABLE_OWNER);
  if (problems.length > 0 || !config) throw new ConfigError(problems, source);
  return config as AwsDeploymentConfig;
}

/** Narrows an already parsed config for the AWS path; throws the same message when the owner is missing. */
export function requireAwsDeploymentConfig(
  config: DeploymentConfig,
  source = `cdk.json context "${CONTEXT_KEY}"`,
): AwsDeploymentConfig {
  if (config.tableOwnerRegion === undefined) throw new ConfigError([MISSING_TABLE_OWNER], source);
  return config as AwsDeploymentConfig;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`(root): not valid JSON (${(err as Error).message})`], source);
  }
}

/**
 * Reads the config the way the CDK app does, for scripts: cdk.json's context `multiRegion`, with an
 * optional override object merged on top (what `-c multiRegion=...` does for the CDK app).
 */
export function readDeploymentConfig(
  opts: { cdkJsonPath?: string; override?: DeploymentConfigInput } = {},
): DeploymentConfig {
  const cdkJsonPath = opts.cdkJsonPath ?? path.resolve(__dirname, '..', 'cdk.json');
  const cdkJson = JSON.parse(fs.readFileSync(cdkJsonPath, 'utf8')) as { context?: Record<string, unknown> };
  const fromFile = cdkJson.context?.[CONTEXT_KEY];
  const base = typeof fromFile === 'string' ? parseJson(fromFile, cdkJsonPath) : (fromFile ?? {});
  return parseDeploymentConfig(
    { ...(base as object), ...opts.override },
    `${cdkJsonPath} context "${CONTEXT_KEY}"`,
  );
}
