/**
 * Assembles the CDK app from a parsed deployment config: the table stack in `tableOwnerRegion` and one
 * region stack per configured region, with cdk-nag's AwsSolutions pack validating every synth.
 *
 * Each region stack is built from that region's config entry and the config's fixed fields only, never
 * from the region list, so its template does not change when other regions are added or removed.
 */
import * as path from 'node:path';
import { App, type AppProps, type Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { DeploymentConfig, RegionConfig } from './config';
import {
  apiDomainName,
  backupApiDomainName,
  regionApiDomainName,
  regionStackName,
  tableStackName,
} from './names';
import { RegionStack } from './region-stack';
import { TableStack } from './table-stack';

/** Used when neither `-c account=...` nor the CLI's credentials name one, so synth works offline. */
export const PLACEHOLDER_ACCOUNT = '111111111111';

/** The repository root: Docker build context of the LB and media images. */
export const SOURCE_DIRECTORY = path.resolve(__dirname, '..');

/**
 * Feature flags pinned in code so the CLI and the tests synthesize the same templates. They are the
 * current recommendations that touch resources in these stacks.
 */
export const FEATURE_FLAGS: Readonly<Record<string, boolean>> = {
  '@aws-cdk/aws-iam:minimizePolicies': true,
  '@aws-cdk/core:checkSecretUsage': true,
  '@aws-cdk/core:enablePartitionLiterals': true,
  '@aws-cdk/core:validateSnapshotRemovalPolicy': true,
  '@aws-cdk/core:includePrefixInUniqueNameGeneration': true,
  '@aws-cdk/aws-ec2:uniqueImdsv2TemplateName': true,
  '@aws-cdk/aws-ec2:launchTemplateDefaultUserData': true,
  '@aws-cdk/aws-ec2:ebsDefaultGp3Volume': true,
  '@aws-cdk/aws-ecs:arnFormatIncludesClusterName': true,
  '@aws-cdk/aws-ecs:disableExplicitDeploymentControllerForCircuitBreaker': true,
  '@aws-cdk/aws-ecs:removeDefaultDeploymentAlarm': true,
  '@aws-cdk/aws-ecs:reduceEc2FargateCloudWatchPermissions': true,
  '@aws-cdk/aws-dynamodb:retainTableReplica': true,
  '@aws-cdk/aws-dynamodb:resourcePolicyPerReplica': true,
};

/** A CDK App with this project's feature flags; `context` entries override them. */
export function createCdkApp(props: AppProps = {}): App {
  return new App({ ...props, context: { ...FEATURE_FLAGS, ...props.context } });
}

export interface BuildStacksOptions {
  /** AWS account every stack deploys to. */
  readonly account: string;
  /**
   * Docker build context of the images.
   * @default SOURCE_DIRECTORY
   */
  readonly sourceDirectory?: string;
}

export interface ProjectStacks {
  readonly tableStack: TableStack;
  /** Keyed by region name, in config order. */
  readonly regionStacks: ReadonlyMap<string, RegionStack>;
}

/** Adds every stack of `config` to `app` and registers cdk-nag on it. */
export function buildStacks(app: App, config: DeploymentConfig, options: BuildStacksOptions): ProjectStacks {
  const env = (region: string): Environment => ({ account: options.account, region });
  const sourceDirectory = options.sourceDirectory ?? SOURCE_DIRECTORY;

  const tableStack = new TableStack(app, tableStackName(config), {
    env: env(config.tableOwnerRegion),
    description: `${config.appName}: global table and join-token secret (replicas in every region)`,
    tableName: config.tableName,
    secretName: config.secretName,
    regions: config.regions.map((r) => r.name),
  });

  const regionStacks = new Map<string, RegionStack>();
  for (const region of config.regions) {
    regionStacks.set(
      region.name,
      new RegionStack(app, regionStackName(config, region.name), {
        env: env(region.name),
        description: `${config.appName}: LB service, media fleet and DNS records of ${region.name}`,
        ...regionStackSettings(config, region),
        sourceDirectory,
      }),
    );
  }

  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { tableStack, regionStacks };
}

/** The slice of the config one region stack sees; deliberately nothing about other regions. */
function regionStackSettings(config: DeploymentConfig, region: RegionConfig) {
  return {
    vpcCidr: region.vpcCidr,
    tableName: config.tableName,
    secretName: config.secretName,
    dns: {
      domain: config.domain,
      hostedZoneId: config.hostedZoneId,
      backupDomain: config.backupDomain,
      backupHostedZoneId: config.backupHostedZoneId,
      apiDomainName: apiDomainName(config),
      regionApiDomainName: regionApiDomainName(config, region.name),
      backupApiDomainName: backupApiDomainName(config),
    },
    healthCheck: config.healthCheck,
    lb: {
      containerPort: config.lbContainerPort,
      desiredCount: region.lbDesiredCount,
      corsOrigins: config.corsOrigins,
    },
    media: {
      instanceType: region.mediaInstanceType,
      minCapacity: region.mediaMinSize,
      maxCapacity: region.mediaMaxSize,
      signalingPort: config.mediaSignalingPort,
      rtcPortMin: config.mediaRtcPortMin,
      rtcPortMax: config.mediaRtcPortMax,
    },
  };
}
