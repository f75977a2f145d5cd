/**
 * Names shared by the stacks, the outputs and the scripts that read them. Every name here is derived
 * from one region and the config's fixed fields, never from the list of regions, so a region's
 * resources keep their names when other regions come and go.
 */
import type { DeploymentConfig } from './config';

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
