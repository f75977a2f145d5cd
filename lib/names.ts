/**
 * Names shared by the stacks, the outputs and the scripts that read them. Every name here is derived
 * from one region and the config's fixed fields, never from the list of regions, so a region's
 * resources keep their names when other regions come and go.
 */
import type { DeploymentConfig, HealthCheckConfig } from './config';

/**
 * A TURN relay's name is this prefix on its region's API name, in each family; the LB builds the same
 * name from the serving region's API URL (runtime/protocol/lbEnvironment.ts TURN_HOST_PREFIX).
 */
export const TURN_HOST_PREFIX = 'turn.';

/** CloudFormation stack that owns the global table and the token key sets. */
export function tableStackName(config: Pick<DeploymentConfig, 'appName'>): string {
  return `${config.appName}-table`;
}

/** CloudFormation stack of one region: `<appName>-<region>`. */
export function regionStackName(config: Pick<DeploymentConfig, 'appName'>, region: string): string {
  return `${config.appName}-${region}`;
}

/** Optional stack in us-east-1 with the alarms on Route 53 health checks (their metrics live only there). */
export function monitoringStackName(config: Pick<DeploymentConfig, 'appName'>): string {
  return `${config.appName}-monitoring`;
}

/** Latency-routed name every client tries first. */
export function apiDomainName(config: Pick<DeploymentConfig, 'domain'>): string {
  return `api.${config.domain}`;
}

/** One region's own name: Route 53 health checks, RTT probes and signaling URLs use it. */
export function regionApiDomainName(config: Pick<DeploymentConfig, 'domain'>, region: string): string {
  return `${region}.api.${config.domain}`;
}

/** Fallback name in an independent hosted zone, tried when `api.<domain>` fails. */
export function backupApiDomainName(config: Pick<DeploymentConfig, 'backupDomain'>): string {
  return `api-backup.${config.backupDomain}`;
}

/** One region's name in the backup family, `<region>.api-backup.<backupDomain>`. */
export function backupRegionApiDomainName(
  config: Pick<DeploymentConfig, 'backupDomain'>,
  region: string,
): string {
  return `${region}.${backupApiDomainName(config)}`;
}

/**
 * A record the operator creates at the external backup DNS provider (`backupDns.provider: "external"`).
 * The region stack outputs each as one line, `<name> CNAME <load balancer DNS name>`, under `output`.
 */
export interface ExternalBackupRecord {
  /** Output key of the region stack that holds the record as a line. */
  readonly output: string;
  readonly name: string;
  readonly type: 'CNAME';
  /** What it points at: the region's ALB (`api`) or its TURN relay's NLB (`turn`). */
  readonly target: 'api' | 'turn';
  /** How the provider must route and health-check it. */
  readonly routing: string;
}

/**
 * TTL of the records at the external provider: what Route 53 answers for the primary family's alias
 * records to a load balancer (a fixed 60 s for ELB targets, Route 53 FAQ on DNS failover), so both
 * families fail over at the same pace.
 */
export const EXTERNAL_BACKUP_TTL_SECONDS = 60;

/**
 * The records one region needs at an external backup DNS provider: the backup family that Route 53 would
 * otherwise hold (lib/regional-dns.ts, lib/region-stack.ts), as CNAMEs, because another provider cannot
 * alias an AWS load balancer. Derived from the region and fixed fields only, like every name here.
 */
export function externalBackupRecords(
  config: Pick<DeploymentConfig, 'backupDomain'> & { readonly healthCheck: HealthCheckConfig },
  region: string,
): ExternalBackupRecord[] {
  const regionName = backupRegionApiDomainName(config, region);
  const ttl = `TTL ${EXTERNAL_BACKUP_TTL_SECONDS} s`;
  return [
    {
      output: 'ExternalBackupRegionRecord',
      name: regionName,
      type: 'CNAME',
      target: 'api',
      routing: `a plain record, ${ttl}`,
    },
    {
      output: 'ExternalBackupApiRecord',
      name: backupApiDomainName(config),
      type: 'CNAME',
      target: 'api',
      routing:
        `this region's member (id ${region}) of a latency or weighted record set, ${ttl}, answered only while ` +
        `its health check passes: HTTPS GET https://${regionName}/health with SNI, healthy on 200, every ` +
        `${config.healthCheck.requestIntervalSeconds} s, unhealthy after ${config.healthCheck.failureThreshold} failures`,
    },
    {
      output: 'ExternalBackupTurnRecord',
      name: `${TURN_HOST_PREFIX}${regionName}`,
      type: 'CNAME',
      target: 'turn',
      routing: `a plain record, ${ttl}`,
    },
  ];
}

/** CloudFormation output keys of a region stack; `npm run client-config` reads them. */
export const REGION_OUTPUTS = {
  apiUrl: 'ApiUrl',
  backupApiUrl: 'BackupApiUrl',
  regionApiUrl: 'RegionApiUrl',
  /** The region in the backup family, `https://<region>.api-backup.<backupDomain>`. */
  backupRegionApiUrl: 'BackupRegionApiUrl',
  region: 'Region',
  loadBalancerDnsName: 'LoadBalancerDnsName',
  healthCheckId: 'HealthCheckId',
  /** The backup family's health check (probes the region's backup name). */
  backupHealthCheckId: 'BackupHealthCheckId',
  lbClusterName: 'LbClusterName',
  lbServiceName: 'LbServiceName',
  mediaAutoScalingGroupName: 'MediaAutoScalingGroupName',
  /** FIS experiment template that blackholes the region's subnets (`chaos --target aws --mode blackhole`). */
  fisBlackholeTemplateId: 'FisBlackholeTemplateId',
  alarmTopicArn: 'AlarmTopicArn',
  dashboardName: 'DashboardName',
  canaryName: 'CanaryName',
} as const;
