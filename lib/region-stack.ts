/**
 * One region, deployable and destroyable on its own: network, LB service, media fleet, TURN relay, this
 * region's records in the global names, and what its operators watch (alarms, dashboard, join canary) and drill
 * with (a FIS experiment that blackholes the region).
 *
 * Region independence is the invariant this stack is built around. It references the global table and
 * the token key sets and the TURN secret by their fixed names in its own region (no exports, no
 * cross-region references; the secrets' full ARNs are looked up in this region at deploy time), and it never lists other
 * regions: each region's LB writes its own public URL into the global table and learns the others from
 * there. Adding or removing a region therefore leaves this template unchanged.
 */
import { CfnOutput, Fn, Stack, type StackProps, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as path from 'node:path';
import type { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { certificateRegion, type HealthCheckConfig } from './config';
import { imageAssetContext } from './image-context';
import { JoinCanary } from './join-canary';
import { LbService } from './lb-service';
import { MediaFleet } from './media-fleet';
import { externalBackupRecords, REGION_OUTPUTS } from './names';
import { RegionBlackhole } from './region-blackhole';
import { RegionMonitoring } from './region-monitoring';
import { RegionNetwork } from './region-network';
import { RegionalDns } from './regional-dns';
import { RegionalSecret } from './regional-secret';
import {
  TURN_HOST_PREFIX,
  TURN_IMAGE_DIRECTORY,
  TURN_TLS_PORT,
  TurnRelay,
  turnRelayDomainNames,
} from './turn-relay';
import { TURN_PORT } from '../runtime/protocol/turnRelayPolicy';

/**
 * Where this region's backup names are served (lib/config.ts `backupDns`), reduced to this region.
 *
 * - `route53`: the stack writes the backup records and the backup health check in that zone and
 *   validates the backup names' certificates through it.
 * - `external`: another DNS provider holds the backup records and checks their health; the stack writes
 *   nothing for the backup names in Route 53, serves them with certificates imported into ACM in this
 *   region, and outputs the records to create there.
 */
export type BackupDnsSettings =
  | { readonly provider: 'route53'; readonly hostedZoneId: string }
  | {
      readonly provider: 'external';
      /**
       * ACM certificate of this region for `api-backup.<backupDomain>` and
       * `<region>.api-backup.<backupDomain>`, on the ALB listener.
       */
      readonly certificateArn: string;
      /** ACM certificate of this region for `turn.<region>.api-backup.<backupDomain>`, on the relay's TLS listener. */
      readonly turnCertificateArn: string;
    };

export interface DnsSettings {
  readonly domain: string;
  readonly hostedZoneId: string;
  readonly backupDomain: string;
  readonly backup: BackupDnsSettings;
  readonly apiDomainName: string;
  readonly regionApiDomainName: string;
  readonly backupApiDomainName: string;
}

export interface LbSettings {
  readonly containerPort: number;
  readonly desiredCount: number;
  /** Browser origins allowed to call the API cross-origin. */
  readonly corsOrigins: readonly string[];
}

export interface MediaSettings {
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly signalingPort: number;
  readonly rtcPortMin: number;
  readonly rtcPortMax: number;
}

export interface TurnSettings {
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly relayPortMin: number;
  readonly relayPortMax: number;
  /** Lifetime of the TURN credentials the LB puts in join answers. */
  readonly credentialTtlSeconds: number;
}

export interface MonitoringSettings {
  /** Addresses subscribed to the region's alarm topic. */
  readonly alarmEmails: readonly string[];
}

export interface RegionStackProps extends StackProps {
  /** `<appName>`: prefixes the names of alarms, dashboard and canary. */
  readonly appName: string;
  readonly vpcCidr: string;
  /** Name of the global table; this stack uses its own region's replica. */
  readonly tableName: string;
  /** Name of the join-token key set; this stack uses its own region's replica. */
  readonly joinTokenKeysSecretName: string;
  /** Name of the media-token key set; this stack uses its own region's replica. */
  readonly mediaTokenKeysSecretName: string;
  /** Name of the TURN shared secret; this stack uses its own region's replica. */
  readonly turnSecretName: string;
  readonly monitoring: MonitoringSettings;
  readonly dns: DnsSettings;
  readonly healthCheck: HealthCheckConfig;
  readonly lb: LbSettings;
  readonly media: MediaSettings;
  readonly turn: TurnSettings;
  /**
   * The repository root: the Dockerfiles' paths and their COPY sources are relative to it. Each image's
   * build context (and asset hash) holds only what its Dockerfile COPYs (lib/image-context.ts).
   */
  readonly sourceDirectory: string;
}

/** Dockerfiles, relative to the repository root. Their COPY lines list each image's inputs. */
export const LB_DOCKERFILE = 'runtime/lb/Dockerfile';
export const MEDIA_DOCKERFILE = 'runtime/media/Dockerfile';

export class RegionStack extends Stack {
  readonly lbService: LbService;
  readonly mediaFleet: MediaFleet;
  readonly turnRelay: TurnRelay;
  readonly dns: RegionalDns;
  readonly monitoring: RegionMonitoring;
  readonly canary: JoinCanary;
  readonly blackhole: RegionBlackhole;

  constructor(scope: Construct, id: string, props: RegionStackProps) {
    super(scope, id, props);
    const region = this.region;
    if (Token.isUnresolved(region)) {
      throw new Error(
        `RegionStack ${id} has no concrete region; pass env.region: its latency record must name the region`,
      );
    }

    const table = dynamodb.TableV2.fromTableName(this, 'Table', props.tableName);
    const joinTokenKeys = new RegionalSecret(this, 'JoinTokenKeys', {
      secretName: props.joinTokenKeysSecretName,
    }).secret;
    const mediaTokenKeys = new RegionalSecret(this, 'MediaTokenKeys', {
      secretName: props.mediaTokenKeysSecretName,
    }).secret;
    // Read by both sides of the TURN REST scheme: the LB signs credentials, the relay hosts check them.
    const turnSecret = new RegionalSecret(this, 'TurnSecret', { secretName: props.turnSecretName }).secret;
    const primaryZone = route53.HostedZone.fromHostedZoneAttributes(this, 'PrimaryZone', {
      hostedZoneId: props.dns.hostedZoneId,
      zoneName: props.dns.domain,
    });
    const backup = props.dns.backup;
    const backupZone =
      backup.provider === 'route53'
        ? route53.HostedZone.fromHostedZoneAttributes(this, 'BackupZone', {
            hostedZoneId: backup.hostedZoneId,
            zoneName: props.dns.backupDomain,
          })
        : undefined;
    // ACM certificates are regional: a load balancer can only use one requested or imported in its own
    // region (ACM user guide, "Supported Regions": a certificate is never copied between regions).
    // lib/config.ts refuses such an ARN already; this holds for stacks built without it.
    const importCertificate = (id: string, arn: string, field: string) => {
      if (certificateRegion(arn) !== region) {
        throw new Error(
          `RegionStack ${id}: backupDns.${field} "${arn}" is not an ACM certificate of ${region}; the ` +
            `load balancers of ${region} can only use a certificate imported into ACM in ${region}`,
        );
      }
      return acm.Certificate.fromCertificateArn(this, id, arn);
    };
    const backupCertificate =
      backup.provider === 'external'
        ? importCertificate('BackupCertificate', backup.certificateArn, `certificateArns.${region}`)
        : undefined;
    const turnBackupCertificate =
      backup.provider !== 'external'
        ? undefined
        : backup.turnCertificateArn === backup.certificateArn
          ? backupCertificate
          : importCertificate(
              'TurnBackupCertificate',
              backup.turnCertificateArn,
              `turnCertificateArns.${region}`,
            );

    const network = new RegionNetwork(this, 'Network', { cidr: props.vpcCidr });

    // The region in the backup family: `<region>.api-backup.<backupDomain>`.
    const backupRegionApiDomainName = `${region}.${props.dns.backupApiDomainName}`;
    // Each name validates in the zone that holds it: a backup name validated through the primary zone
    // could not be renewed while the primary zone is down, the very outage the backup family is for.
    // With the backup zone at another provider, this certificate holds the primary names only and the
    // backup names come with the imported certificate.
    const certificate = new acm.Certificate(this, 'ApiCertificate', {
      domainName: props.dns.regionApiDomainName,
      subjectAlternativeNames: [
        props.dns.apiDomainName,
        ...(backupZone ? [props.dns.backupApiDomainName, backupRegionApiDomainName] : []),
      ],
      validation: acm.CertificateValidation.fromDnsMultiZone({
        [props.dns.regionApiDomainName]: primaryZone,
        [props.dns.apiDomainName]: primaryZone,
        ...(backupZone
          ? { [props.dns.backupApiDomainName]: backupZone, [backupRegionApiDomainName]: backupZone }
          : {}),
      }),
    });

    const publicApiUrl = `https://${props.dns.regionApiDomainName}`;
    const backupRegionApiUrl = `https://${backupRegionApiDomainName}`;
    this.lbService = new LbService(this, 'LbService', {
      vpc: network.vpc,
      certificate,
      backupCertificate,
      image: ecs.ContainerImage.fromAsset(props.sourceDirectory, {
        file: LB_DOCKERFILE,
        ...imageAssetContext(props.sourceDirectory, LB_DOCKERFILE),
        platform: ecrAssets.Platform.LINUX_AMD64,
      }),
      table,
      joinTokenKeys,
      mediaTokenKeys,
      turnSecret,
      // Join answers name the serving region's relay: `turn.` + that region's API host, so the relay
      // follows the region and the name family of the signaling URL (turnRelayDomainNames below).
      turn: {
        hostPrefix: TURN_HOST_PREFIX,
        port: TURN_PORT,
        tlsPort: TURN_TLS_PORT,
        ttlSeconds: props.turn.credentialTtlSeconds,
      },
      publicApiUrl,
      backupApiUrl: backupRegionApiUrl,
      backupDomain: props.dns.backupDomain,
      containerPort: props.lb.containerPort,
      desiredCount: props.lb.desiredCount,
      corsOrigins: props.lb.corsOrigins,
    });

    this.mediaFleet = new MediaFleet(this, 'MediaFleet', {
      vpc: network.vpc,
      image: { directory: props.sourceDirectory, file: MEDIA_DOCKERFILE },
      instanceType: props.media.instanceType,
      minCapacity: props.media.minCapacity,
      maxCapacity: props.media.maxCapacity,
      table,
      mediaTokenKeys,
      signalingPort: props.media.signalingPort,
      rtcPortMin: props.media.rtcPortMin,
      rtcPortMax: props.media.rtcPortMax,
    });
    this.mediaFleet.connections.allowFrom(
      this.lbService.connections,
      ec2.Port.tcp(props.media.signalingPort),
      'Signaling relayed by the LB service',
    );

    // The relay's names sit next to the region's API name in each family; the backup one names the region
    // under api-backup.<backupDomain> and validates in the backup zone, like every backup name.
    const turnNames = turnRelayDomainNames({
      regionApiDomainName: props.dns.regionApiDomainName,
      backupRegionApiDomainName,
    });
    const turnCertificate = new acm.Certificate(this, 'TurnCertificate', {
      domainName: turnNames.primary,
      subjectAlternativeNames: backupZone ? [turnNames.backup] : undefined,
      validation: backupZone
        ? acm.CertificateValidation.fromDnsMultiZone({
            [turnNames.primary]: primaryZone,
            [turnNames.backup]: backupZone,
          })
        : acm.CertificateValidation.fromDns(primaryZone),
    });
    this.turnRelay = new TurnRelay(this, 'TurnRelay', {
      vpc: network.vpc,
      imageDirectory: path.join(props.sourceDirectory, TURN_IMAGE_DIRECTORY),
      instanceType: props.turn.instanceType,
      minCapacity: props.turn.minCapacity,
      maxCapacity: props.turn.maxCapacity,
      relayPortMin: props.turn.relayPortMin,
      relayPortMax: props.turn.relayPortMax,
      secret: turnSecret,
      certificate: turnCertificate,
      backupCertificate: turnBackupCertificate,
      realm: turnNames.primary,
      media: {
        connections: this.mediaFleet.connections,
        subnets: { subnetType: ec2.SubnetType.PUBLIC },
        rtcPortMin: props.media.rtcPortMin,
        rtcPortMax: props.media.rtcPortMax,
      },
    });
    const turnTarget = route53.RecordTarget.fromAlias(
      new route53Targets.LoadBalancerTarget(this.turnRelay.loadBalancer),
    );
    new route53.ARecord(this, 'TurnRecord', {
      zone: primaryZone,
      recordName: turnNames.primary,
      target: turnTarget,
    });
    if (backupZone) {
      new route53.ARecord(this, 'TurnBackupRecord', {
        zone: backupZone,
        recordName: turnNames.backup,
        target: turnTarget,
      });
    }

    this.dns = new RegionalDns(this, 'Dns', {
      region,
      loadBalancer: this.lbService.loadBalancer,
      primaryZone,
      backupZone,
      apiDomainName: props.dns.apiDomainName,
      regionApiDomainName: props.dns.regionApiDomainName,
      backupApiDomainName: props.dns.backupApiDomainName,
      backupRegionApiDomainName,
      requestIntervalSeconds: props.healthCheck.requestIntervalSeconds,
      failureThreshold: props.healthCheck.failureThreshold,
    });

    const namePrefix = `${props.appName}-${region}`;
    const alarms = new AlarmTopic(this, 'Alarms', {
      displayName: `${namePrefix} alarms`,
      emails: props.monitoring.alarmEmails,
    });
    this.canary = new JoinCanary(this, 'JoinCanary', {
      canaryName: `${props.appName}-join`,
      regionApiUrl: publicApiUrl,
      backupApiUrl: `https://${props.dns.backupApiDomainName}`,
      joinTokenKeys,
      roomId: `canary-${region}`,
    });
    this.monitoring = new RegionMonitoring(this, 'Monitoring', {
      namePrefix,
      topic: alarms.topic,
      loadBalancer: this.lbService.loadBalancer,
      targetGroup: this.lbService.targetGroup,
      lbService: this.lbService.service,
      lbMinTasks: this.lbService.minTaskCount,
      mediaGroup: this.mediaFleet.autoScalingGroup,
      mediaMinHosts: this.mediaFleet.minCapacity,
      mediaMaxHosts: this.mediaFleet.maxCapacity,
      turnGroup: this.turnRelay.autoScalingGroup,
      turnMinHosts: props.turn.minCapacity,
      turnTargetGroup: this.turnRelay.udpTcpTargetGroup,
      tableName: props.tableName,
      canary: this.canary.canary,
      canarySteps: this.canary.steps,
    });
    this.blackhole = new RegionBlackhole(this, 'Blackhole', {
      vpc: network.vpc,
      name: `${namePrefix}-blackhole`,
      stopConditions: [this.monitoring.backupJoinAlarm],
    });

    const outputs: Partial<Record<keyof typeof REGION_OUTPUTS, string>> = {
      apiUrl: `https://${props.dns.apiDomainName}`,
      backupApiUrl: `https://${props.dns.backupApiDomainName}`,
      regionApiUrl: publicApiUrl,
      region,
      loadBalancerDnsName: this.lbService.loadBalancer.loadBalancerDnsName,
      healthCheckId: this.dns.healthCheck.healthCheckId,
      backupRegionApiUrl,
      backupHealthCheckId: this.dns.backupHealthCheck?.healthCheckId,
      lbClusterName: this.lbService.cluster.clusterName,
      lbServiceName: this.lbService.service.serviceName,
      mediaAutoScalingGroupName: this.mediaFleet.autoScalingGroup.autoScalingGroupName,
      fisBlackholeTemplateId: this.blackhole.experimentTemplate.attrId,
      alarmTopicArn: alarms.topic.topicArn,
      dashboardName: this.monitoring.dashboard.dashboardName,
      canaryName: this.canary.canary.canaryName,
    };
    for (const [key, value] of Object.entries(outputs)) {
      if (value === undefined) continue;
      new CfnOutput(this, REGION_OUTPUTS[key as keyof typeof REGION_OUTPUTS], { value });
    }
    // Where join answers point clients for TURN (runtime/lb/turnCredentials.ts TurnEndpoint), per family.
    new CfnOutput(this, 'TurnHost', { value: turnNames.primary });
    new CfnOutput(this, 'TurnBackupHost', { value: turnNames.backup });
    new CfnOutput(this, 'TurnTlsPort', { value: String(TURN_TLS_PORT) });
    new CfnOutput(this, 'TurnAutoScalingGroupName', {
      value: this.turnRelay.autoScalingGroup.autoScalingGroupName,
    });
    if (backup.provider === 'external') {
      // The backup family lives at another DNS provider: what to create there, one line per record.
      // Another provider cannot alias an AWS load balancer, so each is a CNAME to its DNS name.
      const targets = {
        api: this.lbService.loadBalancer.loadBalancerDnsName,
        turn: this.turnRelay.loadBalancer.loadBalancerDnsName,
      };
      for (const record of externalBackupRecords(
        { backupDomain: props.dns.backupDomain, healthCheck: props.healthCheck },
        region,
      )) {
        new CfnOutput(this, record.output, {
          value: Fn.join(' ', [record.name, record.type, targets[record.target]]),
          description: `Create at the backup DNS provider: ${record.routing}`,
        });
      }
    }
  }

  /**
   * Fn::GetAZs instead of a context lookup: synth needs no AWS credentials, the template does not bake
   * in one account's AZ names, and the deploying account's own mapping picks the two zones.
   */
  override get availabilityZones(): string[] {
    return [0, 1].map((i) => Fn.select(i, Fn.getAzs()));
  }
}
