/**
 * The AWS chaos run's plan and its rollback, kept apart from the AWS SDK calls so both are
 * unit-tested here (no AWS account in CI) and printed before anything acts.
 *
 * Injection stays on the data plane: the region is evacuated by writing its status item through a
 * surviving region's table replica (never the Route 53 or CloudFormation control planes, which may be
 * the thing that is down). `scale-to-zero` additionally takes the region's LB service and media fleet
 * to zero, the closest a test can get to losing the region's compute. Rollback restores exactly what
 * the run changed, from values it recorded before changing them, in reverse order.
 */
import type { DeploymentConfig } from '../../lib/config';

export type AwsMode = 'evacuate' | 'scale-to-zero';

/** What a region stack outputs (lib/names.ts REGION_OUTPUTS). */
export interface RegionStackOutputs {
  readonly Region: string;
  readonly RegionApiUrl: string;
  readonly ApiUrl: string;
  readonly BackupApiUrl: string;
  readonly LbClusterName: string;
  readonly LbServiceName: string;
  readonly MediaAutoScalingGroupName: string;
}

export type Change =
  | {
      readonly kind: 'region-status';
      readonly region: string;
      readonly via: string;
      readonly previous: 'active' | 'evacuated';
    }
  | {
      readonly kind: 'ecs-desired-count';
      readonly region: string;
      readonly cluster: string;
      readonly service: string;
      readonly previous: number;
    }
  | {
      readonly kind: 'asg-size';
      readonly region: string;
      readonly group: string;
      readonly previous: { readonly min: number; readonly max: number; readonly desired: number };
    };

/** The AWS operations the run needs; the real ones call the SDK, tests use an in-memory double. */
export interface AwsOps {
  getRegionStatus(region: string, via: string): Promise<'active' | 'evacuated'>;
  setRegionStatus(region: string, via: string, status: 'active' | 'evacuated', reason: string): Promise<void>;
  getDesiredCount(region: string, cluster: string, service: string): Promise<number>;
  setDesiredCount(region: string, cluster: string, service: string, count: number): Promise<void>;
  getAsgSize(region: string, group: string): Promise<{ min: number; max: number; desired: number }>;
  setAsgSize(
    region: string,
    group: string,
    size: { min: number; max: number; desired: number },
  ): Promise<void>;
}

export interface PlannedStep {
  readonly phase: 'check' | 'inject' | 'observe' | 'rollback';
  readonly description: string;
}

/** Refuses a run whose config does not match what is deployed (a wrong account or a stale config). */
export function checkDeployment(
  config: DeploymentConfig,
  deployed: {
    readonly stacks: Record<string, RegionStackOutputs | null>;
    readonly tableReplicas: readonly string[];
  },
): string[] {
  const problems: string[] = [];
  const configured = config.regions.map((r) => r.name);
  for (const region of configured) {
    if (!deployed.stacks[region])
      problems.push(`stack ${config.appName}-${region} is not deployed (or has no outputs) in ${region}`);
  }
  const replicas = [...deployed.tableReplicas].sort();
  if (replicas.join(',') !== [...configured].sort().join(',')) {
    problems.push(
      `table ${config.tableName} has replicas [${replicas.join(', ')}] but the config lists [${configured.join(', ')}]`,
    );
  }
  return problems;
}

export function survivorFor(config: DeploymentConfig, region: string): string {
  const via = config.regions.map((r) => r.name).find((r) => r !== region);
  if (!via) throw new Error('a chaos run needs at least two regions: the failed one and one to act through');
  return via;
}

export function planAwsChaos(
  config: DeploymentConfig,
  region: string,
  mode: AwsMode,
  outputs: RegionStackOutputs,
): PlannedStep[] {
  const via = survivorFor(config, region);
  const steps: PlannedStep[] = [
    {
      phase: 'check',
      description: `every region's ${'https://<region>.api.' + config.domain}/health answers 200; api and api-backup answer /v1/ping`,
    },
    {
      phase: 'inject',
      description: `record ${region}'s status, then set it to "evacuated" through ${via}'s replica of ${config.tableName}`,
    },
  ];
  if (mode === 'scale-to-zero') {
    steps.push(
      {
        phase: 'inject',
        description: `record, then set ECS service ${outputs.LbClusterName}/${outputs.LbServiceName} desiredCount=0 in ${region}`,
      },
      {
        phase: 'inject',
        description: `record, then set Auto Scaling group ${outputs.MediaAutoScalingGroupName} min=max=desired=0 in ${region}`,
      },
    );
  }
  steps.push(
    {
      phase: 'observe',
      description: `probe https://api.${config.domain}, https://api-backup.${config.backupDomain} and every region URL each second; query public resolvers for api.${config.domain}`,
    },
    {
      phase: 'rollback',
      description:
        'restore every recorded value in reverse order, then wait until every region is healthy again',
    },
  );
  return steps;
}

/** Applies the injection, recording each previous value before it changes it. */
export async function inject(
  ops: AwsOps,
  config: DeploymentConfig,
  region: string,
  mode: AwsMode,
  outputs: RegionStackOutputs,
  changes: Change[],
): Promise<void> {
  const via = survivorFor(config, region);
  const previousStatus = await ops.getRegionStatus(region, via);
  changes.push({ kind: 'region-status', region, via, previous: previousStatus });
  await ops.setRegionStatus(region, via, 'evacuated', 'chaos drill');
  if (mode !== 'scale-to-zero') return;
  const desired = await ops.getDesiredCount(region, outputs.LbClusterName, outputs.LbServiceName);
  changes.push({
    kind: 'ecs-desired-count',
    region,
    cluster: outputs.LbClusterName,
    service: outputs.LbServiceName,
    previous: desired,
  });
  await ops.setDesiredCount(region, outputs.LbClusterName, outputs.LbServiceName, 0);
  const size = await ops.getAsgSize(region, outputs.MediaAutoScalingGroupName);
  changes.push({ kind: 'asg-size', region, group: outputs.MediaAutoScalingGroupName, previous: size });
  await ops.setAsgSize(region, outputs.MediaAutoScalingGroupName, { min: 0, max: 0, desired: 0 });
}

/**
 * Undoes `changes` newest first. Every step is attempted even when one fails, so one stuck API call
 * cannot leave the rest of the region down; the failures are returned.
 */
export async function rollBack(
  ops: AwsOps,
  changes: readonly Change[],
): Promise<{ restored: string[]; failed: string[] }> {
  const restored: string[] = [];
  const failed: string[] = [];
  for (const change of [...changes].reverse()) {
    try {
      if (change.kind === 'asg-size') {
        await ops.setAsgSize(change.region, change.group, change.previous);
        restored.push(
          `ASG ${change.group} min=${change.previous.min} max=${change.previous.max} desired=${change.previous.desired}`,
        );
      } else if (change.kind === 'ecs-desired-count') {
        await ops.setDesiredCount(change.region, change.cluster, change.service, change.previous);
        restored.push(`ECS ${change.cluster}/${change.service} desiredCount=${change.previous}`);
      } else {
        await ops.setRegionStatus(change.region, change.via, change.previous, 'chaos rollback');
        restored.push(`region ${change.region} status=${change.previous}`);
      }
    } catch (err) {
      failed.push(`${change.kind} in ${change.region}: ${(err as Error).message}`);
    }
  }
  return { restored, failed };
}
