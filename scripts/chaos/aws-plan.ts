/**
 * The AWS chaos run's plan and its rollback, kept apart from the AWS SDK calls so both are
 * unit-tested here (no AWS account in CI) and printed before anything acts.
 *
 * Injection stays on the data plane: the region is evacuated by writing its status item through a
 * surviving region's table replica (never the Route 53 or CloudFormation control planes, which may be
 * the thing that is down). `scale-to-zero` additionally takes the region's LB service and media fleet
 * to zero, the closest a test can get to losing the region's compute. `blackhole` takes the region off
 * the network instead: it starts the region stack's FIS experiment template, which denies all traffic
 * into and out of every subnet of the region (lib/region-blackhole.ts); nothing is evacuated, as in a
 * real loss of the region. Rollback restores exactly what the run changed, from values it recorded
 * before changing them, in reverse order; a FIS experiment is stopped, and FIS puts the subnets'
 * network ACLs back (it also does so by itself when the experiment's duration ends or its stop
 * condition, the api-backup join alarm, fires).
 */
import type { AwsDeploymentConfig as DeploymentConfig } from '../../lib/config';

export const AWS_MODES = ['evacuate', 'scale-to-zero', 'blackhole'] as const;
export type AwsMode = (typeof AWS_MODES)[number];

/** FIS experiment states in which the experiment may still hold the network (FIS API, ExperimentState). */
const FIS_ACTIVE_STATES = new Set(['pending', 'initiating', 'running']);

/** What a region stack outputs (lib/names.ts REGION_OUTPUTS). */
export interface RegionStackOutputs {
  readonly Region: string;
  readonly RegionApiUrl: string;
  readonly ApiUrl: string;
  readonly BackupApiUrl: string;
  readonly LbClusterName: string;
  readonly LbServiceName: string;
  readonly MediaAutoScalingGroupName: string;
  /** Absent on stacks deployed before the blackhole drill existed. */
  readonly FisBlackholeTemplateId?: string;
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
    }
  | {
      readonly kind: 'fis-experiment';
      readonly region: string;
      readonly templateId: string;
      readonly experimentId: string;
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
  /** Starts an experiment from a template; resolves to the experiment id. */
  startExperiment(region: string, templateId: string): Promise<string>;
  /** The experiment's state: pending, initiating, running, completed, stopping, stopped, failed, cancelled. */
  getExperimentState(region: string, experimentId: string): Promise<string>;
  stopExperiment(region: string, experimentId: string): Promise<void>;
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
  run?: { readonly region: string; readonly mode: AwsMode },
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
  if (
    run?.mode === 'blackhole' &&
    deployed.stacks[run.region] &&
    !deployed.stacks[run.region]!.FisBlackholeTemplateId
  ) {
    problems.push(
      `stack ${config.appName}-${run.region} has no FisBlackholeTemplateId output; deploy the current stack to get the blackhole drill`,
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
  ];
  if (mode === 'blackhole') {
    steps.push(
      {
        phase: 'inject',
        description: `start FIS experiment template ${outputs.FisBlackholeTemplateId ?? '<FisBlackholeTemplateId>'} in ${region}: deny all traffic into and out of every subnet of ${region} (FIS stops it by itself when ${region}'s api-backup join alarm fires or its duration ends)`,
      },
      ...observeAndRollBack(config, [
        "stop the FIS experiment if it still runs; FIS puts every subnet's network ACL back",
        'wait until every region is healthy again',
      ]),
    );
    return steps;
  }
  steps.push({
    phase: 'inject',
    description: `record ${region}'s status, then set it to "evacuated" through ${via}'s replica of ${config.tableName}`,
  });
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
    ...observeAndRollBack(config, [
      'restore every recorded value in reverse order, then wait until every region is healthy again',
    ]),
  );
  return steps;
}

function observeAndRollBack(config: DeploymentConfig, rollback: readonly string[]): PlannedStep[] {
  return [
    {
      phase: 'observe',
      description: `probe https://api.${config.domain}, https://api-backup.${config.backupDomain} and every region URL each second; query public resolvers for api.${config.domain}`,
    },
    ...rollback.map((description) => ({ phase: 'rollback' as const, description })),
  ];
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
  if (mode === 'blackhole') {
    const templateId = outputs.FisBlackholeTemplateId;
    if (!templateId) throw new Error(`the ${region} stack has no FisBlackholeTemplateId output`);
    const experimentId = await ops.startExperiment(region, templateId);
    changes.push({ kind: 'fis-experiment', region, templateId, experimentId });
    return;
  }
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
      } else if (change.kind === 'fis-experiment') {
        const state = await ops.getExperimentState(change.region, change.experimentId);
        if (FIS_ACTIVE_STATES.has(state)) {
          await ops.stopExperiment(change.region, change.experimentId);
          restored.push(
            `FIS experiment ${change.experimentId} stopped (was ${state}); FIS restores the subnets' network ACLs`,
          );
        } else {
          restored.push(
            `FIS experiment ${change.experimentId} had already ended (${state}); FIS restored the subnets' network ACLs`,
          );
        }
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
