/**
 * `--target aws`: the chaos plan against deployed stacks. Prints the plan by default; acts only with
 * `--execute`. Observation uses what a client would: HTTPS probes of api, api-backup and every region
 * URL, and DNS answers from public resolvers. Rollback always runs once anything changed.
 *
 * FIS calls go through the AWS CLI (`aws fis ...`, which docs/DEPLOY.md already requires): the npm
 * registry this project installs from has no @aws-sdk/client-fis of the SDK line the other clients use,
 * and mixing an older line into the lockfile would duplicate the SDK's core packages.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { Resolver } from 'node:dns/promises';
import type { AwsDeploymentConfig as DeploymentConfig } from '../../lib/config';
import { Store } from '../../runtime/store';
import {
  checkDeployment,
  inject,
  planAwsChaos,
  rollBack,
  type AwsMode,
  type AwsOps,
  type Change,
  type PlannedStep,
  type RegionStackOutputs,
} from './aws-plan';

const OBSERVE_MS = 180_000;
const execFileAsync = promisify(execFile);

/** `aws <args> --region <region> --output json`, parsed. */
async function awsCli(region: string, args: readonly string[]): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await execFileAsync('aws', [...args, '--region', region, '--output', 'json'], {
      timeout: 30_000,
    });
    return stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('the AWS CLI (aws, v2) is needed for --mode blackhole; install it and retry', {
        cause: err,
      });
    }
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`aws ${args.slice(0, 2).join(' ')} failed: ${stderr || (err as Error).message}`, {
      cause: err,
    });
  }
}
const PUBLIC_RESOLVERS = ['1.1.1.1', '8.8.8.8'];

export interface AwsRunOptions {
  readonly config: DeploymentConfig;
  readonly region: string;
  readonly mode: AwsMode;
  readonly execute: boolean;
  readonly json: boolean;
  readonly log: (line: string) => void;
}

async function stackOutputs(config: DeploymentConfig, region: string): Promise<RegionStackOutputs | null> {
  const cfn = new CloudFormationClient({ region });
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: `${config.appName}-${region}` }));
    const outputs = Object.fromEntries(
      (out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]),
    );
    return outputs.RegionApiUrl ? (outputs as unknown as RegionStackOutputs) : null;
  } catch {
    return null;
  } finally {
    cfn.destroy();
  }
}

async function tableReplicas(config: DeploymentConfig): Promise<string[]> {
  const ddb = new DynamoDBClient({ region: config.tableOwnerRegion });
  try {
    const out = await ddb.send(new DescribeTableCommand({ TableName: config.tableName }));
    return (out.Table?.Replicas ?? [])
      .map((r) => r.RegionName!)
      .concat(config.tableOwnerRegion)
      .filter((r, i, a) => a.indexOf(r) === i);
  } finally {
    ddb.destroy();
  }
}

function sdkOps(config: DeploymentConfig): AwsOps {
  const store = (via: string) => new Store({ region: via, tableName: config.tableName });
  return {
    getRegionStatus: async (region, via) => (await store(via).regions.getStatus(region)).status,
    setRegionStatus: async (region, via, status, reason) =>
      void (await store(via).regions.setStatus(region, status, reason)),
    getDesiredCount: async (region, cluster, service) => {
      const out = await new ECSClient({ region }).send(
        new DescribeServicesCommand({ cluster, services: [service] }),
      );
      return out.services?.[0]?.desiredCount ?? 0;
    },
    setDesiredCount: async (region, cluster, service, count) => {
      await new ECSClient({ region }).send(
        new UpdateServiceCommand({ cluster, service, desiredCount: count }),
      );
    },
    getAsgSize: async (region, group) => {
      const out = await new AutoScalingClient({ region }).send(
        new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }),
      );
      const g = out.AutoScalingGroups?.[0];
      return { min: g?.MinSize ?? 0, max: g?.MaxSize ?? 0, desired: g?.DesiredCapacity ?? 0 };
    },
    startExperiment: async (region, templateId) => {
      const out = await awsCli(region, ['fis', 'start-experiment', '--experiment-template-id', templateId]);
      const id = (out.experiment as { id?: string } | undefined)?.id;
      if (!id) throw new Error(`aws fis start-experiment returned no experiment id for ${templateId}`);
      return id;
    },
    getExperimentState: async (region, experimentId) => {
      const out = await awsCli(region, ['fis', 'get-experiment', '--id', experimentId]);
      return (out.experiment as { state?: { status?: string } } | undefined)?.state?.status ?? 'unknown';
    },
    stopExperiment: async (region, experimentId) => {
      await awsCli(region, ['fis', 'stop-experiment', '--id', experimentId]);
    },
    setAsgSize: async (region, group, size) => {
      await new AutoScalingClient({ region }).send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: group,
          MinSize: size.min,
          MaxSize: size.max,
          DesiredCapacity: size.desired,
        }),
      );
    },
  };
}

async function probe(url: string): Promise<{ ok: boolean; region: string | null }> {
  try {
    const res = await fetch(`${url}/v1/ping`, { signal: AbortSignal.timeout(3_000) });
    return { ok: res.ok, region: res.headers.get('x-region') };
  } catch {
    return { ok: false, region: null };
  }
}

/** One look at the region from outside, every second of the observation. */
interface OutsideSample {
  atMs: number;
  /** The region `api` (resp. `api-backup`) answered from, null when it did not answer. */
  api: string | null;
  backup: string | null;
  survivorsOk: boolean;
  /** What public resolvers return for the api name. */
  dns: string[];
}

export async function runAwsChaos(opts: AwsRunOptions): Promise<number> {
  const { config, region, mode, log } = opts;
  if (!config.regions.some((r) => r.name === region)) {
    console.error(
      `error: --region "${region}" is not a configured region (${config.regions.map((r) => r.name).join(', ')})`,
    );
    return 2;
  }
  const stacks = await readCheckedDeployment(opts);
  if (stacks === null) return 2;
  const outputs = stacks[region]!;
  const plan = planAwsChaos(config, region, mode, outputs);
  if (!opts.execute) {
    printPlan(plan, opts);
    return 0;
  }

  const ops = sdkOps(config);
  const survivorUrls = Object.entries(stacks)
    .filter(([r]) => r !== region)
    .map(([, s]) => s!.RegionApiUrl);
  if (!(await steadyStateHolds(Object.values(stacks).map((s) => s!.RegionApiUrl)))) return 1;
  const changes: Change[] = [];
  let samples: OutsideSample[];
  const injectedAt = Date.now();
  let rollback: { restored: string[]; failed: string[] };
  try {
    await inject(ops, config, region, mode, outputs, changes);
    log(`injected: ${changes.map((c) => c.kind).join(', ')}`);
    const experiment = changes.find((c) => c.kind === 'fis-experiment');
    samples = await observeFromOutside({
      outputs,
      survivorUrls,
      injectedAt,
      experiment: experiment && {
        id: experiment.experimentId,
        state: () => ops.getExperimentState(region, experiment.experimentId),
      },
      log,
    });
  } finally {
    rollback = await rollBack(ops, changes);
    log(
      `rollback: restored ${rollback.restored.join('; ') || 'nothing'}${rollback.failed.length ? `; FAILED ${rollback.failed.join('; ')}` : ''}`,
    );
  }
  return judgeAndReport({ opts, plan, changes, samples, rollback });
}

/**
 * Every region's stack outputs, or null (with the reasons printed) when the config does not match what
 * is deployed: a wrong account or a stale config must not drive the drill.
 */
async function readCheckedDeployment(
  opts: AwsRunOptions,
): Promise<Record<string, RegionStackOutputs | null> | null> {
  const { config, region, mode } = opts;
  opts.log(`reading the deployed stacks of ${config.regions.length} regions`);
  const stacks: Record<string, RegionStackOutputs | null> = {};
  for (const r of config.regions) stacks[r.name] = await stackOutputs(config, r.name);
  const problems = checkDeployment(
    config,
    { stacks, tableReplicas: await tableReplicas(config).catch(() => []) },
    { region, mode },
  );
  if (problems.length > 0) {
    console.error(
      `error: the config does not match what is deployed; refusing to run:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    return null;
  }
  return stacks;
}

function printPlan(plan: readonly PlannedStep[], opts: AwsRunOptions): void {
  const text = plan.map((s, i) => `${i + 1}. [${s.phase}] ${s.description}`).join('\n');
  if (opts.json)
    process.stdout.write(
      `${JSON.stringify({ target: 'aws', region: opts.region, mode: opts.mode, executed: false, plan }, null, 2)}\n`,
    );
  else console.log(`Plan (nothing done; add --execute to act):\n${text}`);
}

/** Every region's /health answers 200; otherwise says which did not, and nothing is injected. */
async function steadyStateHolds(urls: readonly string[]): Promise<boolean> {
  const steady = await Promise.all(
    urls.map((u) =>
      fetch(`${u}/health`, { signal: AbortSignal.timeout(5_000) }).then(
        (r) => r.status,
        () => 0,
      ),
    ),
  );
  if (steady.some((s) => s !== 200)) {
    console.error(
      `steady state does not hold (health: ${urls.map((u, i) => `${u}=${steady[i]}`).join(', ')}); not injecting`,
    );
    return false;
  }
  return true;
}

/**
 * What a client sees for OBSERVE_MS after the injection: where api and api-backup answer from, whether
 * every survivor answers, what public DNS returns. Progress (and the FIS experiment's state, when the
 * injection started one) every ten samples.
 */
async function observeFromOutside(opts: {
  readonly outputs: RegionStackOutputs;
  readonly survivorUrls: readonly string[];
  readonly injectedAt: number;
  readonly experiment: { readonly id: string; readonly state: () => Promise<string> } | undefined;
  readonly log: (line: string) => void;
}): Promise<OutsideSample[]> {
  const { outputs, injectedAt, experiment, log } = opts;
  const samples: OutsideSample[] = [];
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers(PUBLIC_RESOLVERS);
  while (Date.now() - injectedAt < OBSERVE_MS) {
    const [api, backup, ...survivors] = await Promise.all([
      probe(outputs.ApiUrl),
      probe(outputs.BackupApiUrl),
      ...opts.survivorUrls.map(probe),
    ]);
    const dns = await resolver.resolve4(new URL(outputs.ApiUrl).hostname).catch(() => []);
    samples.push({
      atMs: Date.now() - injectedAt,
      api: api!.region,
      backup: backup!.region,
      survivorsOk: survivors.every((s) => s.ok),
      dns,
    });
    if (experiment && samples.length % 10 === 0) {
      const state = await experiment.state().catch(() => 'unknown');
      log(`FIS experiment ${experiment.id}: ${state}`);
    }
    if (samples.length % 10 === 0)
      log(
        `t+${Math.round((Date.now() - injectedAt) / 1000)}s: api → ${api!.region ?? 'no answer'}, backup → ${backup!.region ?? 'no answer'}`,
      );
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return samples;
}

/** Pass: survivors answered every probe, api left the region for good, and the rollback restored all. */
function judgeAndReport(run: {
  readonly opts: AwsRunOptions;
  readonly plan: readonly PlannedStep[];
  readonly changes: readonly Change[];
  readonly samples: readonly OutsideSample[];
  readonly rollback: { restored: string[]; failed: string[] };
}): number {
  const { opts, samples, rollback } = run;
  const { region } = opts;
  const apiMovedAt =
    samples.find((_s, i) => samples.slice(i).every((x) => x.api !== null && x.api !== region))?.atMs ?? null;
  const survivorsOk = samples.every((s) => s.survivorsOk);
  const pass = survivorsOk && apiMovedAt !== null && rollback.failed.length === 0;
  const report = {
    target: 'aws',
    region,
    mode: opts.mode,
    executed: true,
    plan: run.plan,
    changes: run.changes,
    samples,
    apiMovedAfterMs: apiMovedAt,
    survivorsOk,
    rollback,
    verdict: { pass },
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else
    console.log(
      `api left ${region} after ${apiMovedAt ?? '—'} ms; survivors ${survivorsOk ? 'answered every probe' : 'FAILED probes'}; ${pass ? 'PASS' : 'FAIL'}`,
    );
  return pass ? 0 : 1;
}
