/**
 * Assembles the CDK app from a parsed deployment config: the table stack in `tableOwnerRegion`, one
 * region stack per configured region, and (when health check ids are configured) the optional
 * monitoring stack in us-east-1, with cdk-nag's AwsSolutions pack validating every synth.
 *
 * Each region stack is built from that region's config entry and the config's fixed fields only, never
 * from the region list, so its template does not change when other regions are added or removed. It is
 * ordered after the table stack (`deploy --all` creates the table and the key sets first) by an
 * assembly-level dependency, which touches no template.
 */
import * as path from 'node:path';
import { App, type AppProps, CfnRule, type Environment, Fn, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { AwsDeploymentConfig, RegionConfig } from './config';
import { MonitoringStack, ROUTE53_METRICS_REGION } from './monitoring-stack';
import {
  apiDomainName,
  backupApiDomainName,
  monitoringStackName,
  regionApiDomainName,
  regionStackName,
  tableStackName,
} from './names';
import { type BackupDnsSettings, RegionStack, type RegionStackProps } from './region-stack';
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
  // Not here: '@aws-cdk/aws-dynamodb:retainTableReplica'. It applies to the replicas that the older
  // `Table` construct creates through a custom resource; this project's TableV2 is one
  // AWS::DynamoDB::GlobalTable whose replicas follow the table's own Retain policy, so the flag
  // changed nothing (test/lib/table-stack.test.ts checks the replicas' retention directly).
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
  /**
   * Placeholder values the config uses (lib/placeholders.ts), for an offline review synth. Every
   * template then carries a rule that CloudFormation evaluates before it creates anything and that
   * always fails, naming them: such templates can be read and linted, never deployed.
   * @default - none: the templates deploy
   */
  readonly placeholders?: readonly string[];
}

export interface ProjectStacks {
  readonly tableStack: TableStack;
  /** Keyed by region name, in config order. */
  readonly regionStacks: ReadonlyMap<string, RegionStack>;
  /** The optional us-east-1 stack of Route 53 health-check alarms; only when health check ids are configured. */
  readonly monitoringStack: MonitoringStack | undefined;
}

/** Logical id of the rule that makes a placeholder template undeployable. */
export const PLACEHOLDER_RULE_ID = 'RefusePlaceholderConfig';

/** Adds every stack of `config` to `app` and registers cdk-nag on it. */
export function buildStacks(
  app: App,
  config: AwsDeploymentConfig,
  options: BuildStacksOptions,
): ProjectStacks {
  const env = (region: string): Environment => ({ account: options.account, region });
  const sourceDirectory = options.sourceDirectory ?? SOURCE_DIRECTORY;

  const tableStack = new TableStack(app, tableStackName(config), {
    env: env(config.tableOwnerRegion),
    description: `${config.appName}: global table and token key sets (replicas in every region)`,
    tableName: config.tableName,
    joinTokenKeysSecretName: config.joinTokenKeysSecretName,
    mediaTokenKeysSecretName: config.mediaTokenKeysSecretName,
    turnSecretName: config.turnSecretName,
    regions: config.regions.map((r) => r.name),
  });

  const regionStacks = new Map<string, RegionStack>();
  for (const region of config.regions) {
    const stack = new RegionStack(
      app,
      regionStackName(config, region.name),
      regionStackProps(config, region, { account: options.account, sourceDirectory }),
    );
    // Deploy order only (`deploy --all`, or a region named with its dependencies): the region's key
    // set replicas and table replica must exist first. The dependency lives in the cloud assembly's
    // manifest; the template gains no reference to the table stack.
    stack.addStackDependency(
      tableStack,
      'its table replica and key set replicas are created by the table stack',
    );
    regionStacks.set(region.name, stack);
  }

  const healthCheckIds = config.monitoring.healthCheckIds;
  const monitoringStack =
    Object.keys(healthCheckIds).length > 0
      ? new MonitoringStack(app, monitoringStackName(config), {
          env: env(ROUTE53_METRICS_REGION),
          description: `${config.appName}: alarms on the regions' Route 53 health checks (optional; nothing depends on it)`,
          appName: config.appName,
          healthCheckIds,
          alarmEmails: config.monitoring.alarmEmails,
        })
      : undefined;

  if (options.placeholders && options.placeholders.length > 0) {
    for (const stack of [
      tableStack,
      ...regionStacks.values(),
      ...(monitoringStack ? [monitoringStack] : []),
    ]) {
      refusePlaceholderDeployment(stack, options.placeholders);
    }
  }

  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { tableStack, regionStacks, monitoringStack };
}

/**
 * A template rule that always fails. CloudFormation evaluates rules when it creates or updates a stack
 * (and a change set), before it touches any resource; the assertion reads the CDK bootstrap version
 * parameter, which is never this string.
 */
export function refusePlaceholderDeployment(stack: Stack, placeholders: readonly string[]): void {
  const fields = [...new Set(placeholders.map((p) => p.split(':')[0]))].join(', ');
  new CfnRule(stack, PLACEHOLDER_RULE_ID, {
    assertions: [
      {
        assert: Fn.conditionEquals(Fn.ref('BootstrapVersion'), 'synthesized-with-placeholders'),
        assertDescription:
          `Synthesized for review with placeholder values (${fields}); not deployable. Set real values in ` +
          'cdk.json and run cdk deploy without -c allowPlaceholders=true.',
      },
    ],
  });
}

/** The props of one region's stack: that region's entry and the config's fixed fields, nothing else. */
export function regionStackProps(
  config: AwsDeploymentConfig,
  region: RegionConfig,
  options: { account: string; sourceDirectory: string },
): RegionStackProps {
  return {
    env: { account: options.account, region: region.name },
    description: `${config.appName}: LB service, media fleet, TURN relay, DNS records, alarms and canary of ${region.name}`,
    sourceDirectory: options.sourceDirectory,
    appName: config.appName,
    vpcCidr: region.vpcCidr,
    tableName: config.tableName,
    joinTokenKeysSecretName: config.joinTokenKeysSecretName,
    mediaTokenKeysSecretName: config.mediaTokenKeysSecretName,
    turnSecretName: config.turnSecretName,
    monitoring: { alarmEmails: config.monitoring.alarmEmails },
    dns: {
      domain: config.domain,
      hostedZoneId: config.hostedZoneId,
      backupDomain: config.backupDomain,
      backup: backupDnsSettings(config, region.name),
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
    turn: {
      instanceType: config.turn.instanceType,
      minCapacity: config.turn.minSize,
      maxCapacity: config.turn.maxSize,
      relayPortMin: config.turn.relayPortMin,
      relayPortMax: config.turn.relayPortMax,
      credentialTtlSeconds: config.turn.credentialTtlSeconds,
    },
  };
}

/**
 * The region's slice of the backup DNS config: a Route 53 zone id, or this region's own certificates
 * (never another region's ARNs, so the template names no other region).
 */
export function backupDnsSettings(config: AwsDeploymentConfig, region: string): BackupDnsSettings {
  const backup = config.backupDns;
  if (backup.provider === 'route53') return { provider: 'route53', hostedZoneId: backup.hostedZoneId };
  const certificateArn = backup.certificateArns[region];
  if (certificateArn === undefined) {
    // parseDeploymentConfig refuses such a config; this guards callers that build one by hand.
    throw new Error(
      `backupDns.certificateArns has no certificate for ${region}; add one imported in ${region}`,
    );
  }
  return {
    provider: 'external',
    certificateArn,
    turnCertificateArn: backup.turnCertificateArns[region] ?? certificateArn,
  };
}
