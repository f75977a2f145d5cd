/**
 * This region's part of the global names. Route 53 assembles `api.<domain>` from one latency record per
 * region stack, so each stack adds only its own record (SetIdentifier = its region) and never lists
 * the others: deploying or deleting one region changes exactly one record in each name.
 *
 * Two name families, each complete on its own: primary (`api.<domain>`, `<region>.api.<domain>`) in the
 * primary zone and backup (`api-backup.<backupDomain>`, `<region>.api-backup.<backupDomain>`) in the
 * backup zone. Each family has its own health check, probing `/health` through the family's own region
 * name: a backup record gated by a probe of a primary name would turn unhealthy exactly when the
 * primary zone fails, and Route 53 would then fail open to every region, dead ones included. A region
 * that answers 503 (evacuated, no media servers, replica unreachable) leaves both families within
 * `failureThreshold` probes.
 *
 * With the backup zone at another DNS provider (no `backupZone`), only the primary family is here: that
 * provider holds the backup records and probes each region's backup name itself (docs/DEPLOY.md).
 */
import { Duration, Tags } from 'aws-cdk-lib';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';

/** Every region gets the same weight: the backup name spreads load evenly over healthy regions. */
const BACKUP_RECORD_WEIGHT = 100;

export interface RegionalDnsProps {
  /** The AWS region this stack serves; the latency record's Region and SetIdentifier. */
  readonly region: string;
  readonly loadBalancer: elbv2.ILoadBalancerV2;
  /** Zone of `domain`, holding `api.<domain>` and `<region>.api.<domain>`. */
  readonly primaryZone: route53.IHostedZone;
  /**
   * Route 53 zone of `backupDomain`, holding `api-backup.<backupDomain>` and
   * `<region>.api-backup.<backupDomain>`.
   * @default - the backup zone is at another DNS provider: no backup record and no backup health check
   *   here; that provider holds the records and checks `/health` (docs/DEPLOY.md)
   */
  readonly backupZone?: route53.IHostedZone;
  readonly apiDomainName: string;
  readonly regionApiDomainName: string;
  readonly backupApiDomainName: string;
  /** `<region>.api-backup.<backupDomain>`: the region in the backup family, and its health check's name. */
  readonly backupRegionApiDomainName: string;
  /** Route 53 probes every 10 or 30 seconds. */
  readonly requestIntervalSeconds: number;
  /** Consecutive failed probes before the region leaves DNS (1-10). */
  readonly failureThreshold: number;
}

export class RegionalDns extends Construct {
  /** Probes the region through its primary name; gates the latency record. */
  readonly healthCheck: route53.HealthCheck;
  /** Probes the region through its backup name; gates the backup record. Only with a Route 53 backup zone. */
  readonly backupHealthCheck: route53.HealthCheck | undefined;

  constructor(scope: Construct, id: string, props: RegionalDnsProps) {
    super(scope, id);
    if (props.requestIntervalSeconds !== 10 && props.requestIntervalSeconds !== 30) {
      throw new Error(`RegionalDns requestIntervalSeconds is ${props.requestIntervalSeconds}; use 10 or 30`);
    }
    if (
      !Number.isInteger(props.failureThreshold) ||
      props.failureThreshold < 1 ||
      props.failureThreshold > 10
    ) {
      throw new Error(
        `RegionalDns failureThreshold is ${props.failureThreshold}; use an integer from 1 to 10`,
      );
    }

    const healthCheck = (id: string, fqdn: string) => {
      const check = new route53.HealthCheck(this, id, {
        type: route53.HealthCheckType.HTTPS,
        fqdn,
        port: 443,
        resourcePath: '/health',
        // The name goes in the TLS client_hello too, so the ALB answers with the certificate naming it.
        enableSNI: true,
        requestInterval: Duration.seconds(props.requestIntervalSeconds),
        failureThreshold: props.failureThreshold,
      });
      Tags.of(check).add('Name', fqdn);
      return check;
    };
    this.healthCheck = healthCheck('HealthCheck', props.regionApiDomainName);
    this.backupHealthCheck = props.backupZone
      ? healthCheck('BackupHealthCheck', props.backupRegionApiDomainName)
      : undefined;

    // Evaluating target health as well catches an ALB with no live task before the probes do.
    const alias = route53.RecordTarget.fromAlias(
      new targets.LoadBalancerTarget(props.loadBalancer, { evaluateTargetHealth: true }),
    );

    new route53.ARecord(this, 'RegionRecord', {
      zone: props.primaryZone,
      recordName: props.regionApiDomainName,
      target: alias,
    });

    new route53.ARecord(this, 'LatencyRecord', {
      zone: props.primaryZone,
      recordName: props.apiDomainName,
      target: alias,
      region: props.region,
      setIdentifier: props.region,
      healthCheck: this.healthCheck,
    });

    if (!props.backupZone) return;

    new route53.ARecord(this, 'BackupRegionRecord', {
      zone: props.backupZone,
      recordName: props.backupRegionApiDomainName,
      target: alias,
    });

    new route53.ARecord(this, 'BackupRecord', {
      zone: props.backupZone,
      recordName: props.backupApiDomainName,
      target: alias,
      weight: BACKUP_RECORD_WEIGHT,
      setIdentifier: props.region,
      healthCheck: this.backupHealthCheck,
    });
  }
}
