import { parseAwsDeploymentConfig } from '../../../lib/config';
import {
  checkDeployment,
  inject,
  planAwsChaos,
  rollBack,
  type AwsOps,
  type Change,
  type RegionStackOutputs,
} from '../../../scripts/chaos/aws-plan';

const config = parseAwsDeploymentConfig({ tableOwnerRegion: 'eu-west-1' });

function outputs(region: string): RegionStackOutputs {
  return {
    Region: region,
    RegionApiUrl: `https://${region}.api.example.com`,
    ApiUrl: 'https://api.example.com',
    BackupApiUrl: 'https://api-backup.example.net',
    LbClusterName: `lb-${region}`,
    LbServiceName: `lb-svc-${region}`,
    MediaAutoScalingGroupName: `media-${region}`,
    FisBlackholeTemplateId: `EXT-${region}`,
  };
}

/** AWS as a few numbers: what the run reads and writes, so rollback can be checked against it. */
class InMemoryAws implements AwsOps {
  status: Record<string, 'active' | 'evacuated'> = {};
  desired: Record<string, number> = { 'lb-us-east-1/lb-svc-us-east-1': 3 };
  asg: Record<string, { min: number; max: number; desired: number }> = {
    'media-us-east-1': { min: 2, max: 10, desired: 4 },
  };
  writesVia: string[] = [];
  failOn: string | undefined;
  /** FIS experiments by id: template and state. */
  experiments: Record<string, { templateId: string; region: string; state: string }> = {};

  async getRegionStatus(region: string) {
    return this.status[region] ?? 'active';
  }
  async setRegionStatus(region: string, via: string, status: 'active' | 'evacuated') {
    this.writesVia.push(via);
    this.status[region] = status;
  }
  async getDesiredCount(_region: string, cluster: string, service: string) {
    return this.desired[`${cluster}/${service}`]!;
  }
  async setDesiredCount(_region: string, cluster: string, service: string, count: number) {
    if (this.failOn === 'ecs') throw new Error('ECS is down');
    this.desired[`${cluster}/${service}`] = count;
  }
  async getAsgSize(_region: string, group: string) {
    return { ...this.asg[group]! };
  }
  async setAsgSize(_region: string, group: string, size: { min: number; max: number; desired: number }) {
    this.asg[group] = { ...size };
  }
  async startExperiment(region: string, templateId: string) {
    const id = `EXP${Object.keys(this.experiments).length + 1}`;
    this.experiments[id] = { templateId, region, state: 'running' };
    return id;
  }
  async getExperimentState(_region: string, id: string) {
    return this.experiments[id]!.state;
  }
  async stopExperiment(_region: string, id: string) {
    if (this.failOn === 'fis') throw new Error('FIS is down');
    this.experiments[id]!.state = 'stopped';
  }
}

describe('AWS chaos planning and rollback', () => {
  it('refuses a config that does not match the deployed stacks or the table replicas', () => {
    const stacks = {
      'us-east-1': outputs('us-east-1'),
      'eu-west-1': outputs('eu-west-1'),
      'ap-southeast-1': null,
    };
    expect(checkDeployment(config, { stacks, tableReplicas: ['us-east-1', 'eu-west-1'] })).toEqual([
      'stack mrwebrtc-ap-southeast-1 is not deployed (or has no outputs) in ap-southeast-1',
      'table mrwebrtc-rooms has replicas [eu-west-1, us-east-1] but the config lists [us-east-1, eu-west-1, ap-southeast-1]',
    ]);
    const all = Object.fromEntries(config.regions.map((r) => [r.name, outputs(r.name)]));
    expect(
      checkDeployment(config, { stacks: all, tableReplicas: ['ap-southeast-1', 'eu-west-1', 'us-east-1'] }),
    ).toEqual([]);
  });

  it('plans evacuation through a surviving region, and scale-to-zero on top', () => {
    const evacuate = planAwsChaos(config, 'us-east-1', 'evacuate', outputs('us-east-1'));
    expect(evacuate.filter((s) => s.phase === 'inject').map((s) => s.description)).toEqual([
      `record us-east-1's status, then set it to "evacuated" through eu-west-1's replica of mrwebrtc-rooms`,
    ]);
    const scale = planAwsChaos(config, 'us-east-1', 'scale-to-zero', outputs('us-east-1'));
    expect(scale.filter((s) => s.phase === 'inject')).toHaveLength(3);
    expect(scale.at(-1)!.phase).toBe('rollback');
  });

  it('restores exactly what it changed, newest first, through a surviving replica', async () => {
    const aws = new InMemoryAws();
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'scale-to-zero', outputs('us-east-1'), changes);
    expect(aws.status['us-east-1']).toBe('evacuated');
    expect(aws.desired['lb-us-east-1/lb-svc-us-east-1']).toBe(0);
    expect(aws.asg['media-us-east-1']).toEqual({ min: 0, max: 0, desired: 0 });
    expect(aws.writesVia).toEqual(['eu-west-1']);

    const result = await rollBack(aws, changes);
    expect(result.failed).toEqual([]);
    expect(result.restored).toEqual([
      'ASG media-us-east-1 min=2 max=10 desired=4',
      'ECS lb-us-east-1/lb-svc-us-east-1 desiredCount=3',
      'region us-east-1 status=active',
    ]);
    expect(aws.status['us-east-1']).toBe('active');
    expect(aws.desired['lb-us-east-1/lb-svc-us-east-1']).toBe(3);
    expect(aws.asg['media-us-east-1']).toEqual({ min: 2, max: 10, desired: 4 });
  });

  it('keeps rolling back when one step fails, and reports it', async () => {
    const aws = new InMemoryAws();
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'scale-to-zero', outputs('us-east-1'), changes);
    aws.failOn = 'ecs';
    const result = await rollBack(aws, changes);
    expect(result.failed).toEqual(['ecs-desired-count in us-east-1: ECS is down']);
    expect(aws.asg['media-us-east-1']).toEqual({ min: 2, max: 10, desired: 4 });
    expect(aws.status['us-east-1']).toBe('active');
  });

  it('keeps a region that was already evacuated evacuated after the rollback', async () => {
    const aws = new InMemoryAws();
    aws.status['us-east-1'] = 'evacuated';
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'evacuate', outputs('us-east-1'), changes);
    await rollBack(aws, changes);
    expect(aws.status['us-east-1']).toBe('evacuated');
  });

  it("plans a blackhole through the region stack's FIS template, without evacuating", () => {
    const plan = planAwsChaos(config, 'us-east-1', 'blackhole', outputs('us-east-1'));
    const inject = plan.filter((s) => s.phase === 'inject').map((s) => s.description);
    expect(inject).toHaveLength(1);
    expect(inject[0]).toMatch(/^start FIS experiment template EXT-us-east-1 in us-east-1: deny all traffic/);
    expect(plan.filter((s) => s.phase === 'rollback').map((s) => s.description)[0]).toMatch(
      /stop the FIS experiment if it still runs; FIS puts every subnet's network ACL back/,
    );
  });

  it('starts the experiment in the failed region only, and stops it on rollback', async () => {
    const aws = new InMemoryAws();
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'blackhole', outputs('us-east-1'), changes);
    expect(Object.values(aws.experiments)).toEqual([
      { templateId: 'EXT-us-east-1', region: 'us-east-1', state: 'running' },
    ]);
    // A blackhole is a network loss, not an evacuation: the status item is left alone.
    expect(aws.status['us-east-1']).toBeUndefined();
    expect(aws.writesVia).toEqual([]);
    const result = await rollBack(aws, changes);
    expect(result).toEqual({
      restored: ["FIS experiment EXP1 stopped (was running); FIS restores the subnets' network ACLs"],
      failed: [],
    });
    expect(aws.experiments.EXP1!.state).toBe('stopped');
  });

  it('leaves an experiment that FIS already ended (duration or stop condition) as it is', async () => {
    const aws = new InMemoryAws();
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'blackhole', outputs('us-east-1'), changes);
    aws.experiments.EXP1!.state = 'stopped';
    aws.failOn = 'fis';
    const result = await rollBack(aws, changes);
    expect(result.failed).toEqual([]);
    expect(result.restored[0]).toMatch(/had already ended \(stopped\)/);
  });

  it('reports a stop that fails, so the operator knows FIS still holds the network', async () => {
    const aws = new InMemoryAws();
    const changes: Change[] = [];
    await inject(aws, config, 'us-east-1', 'blackhole', outputs('us-east-1'), changes);
    aws.failOn = 'fis';
    expect((await rollBack(aws, changes)).failed).toEqual(['fis-experiment in us-east-1: FIS is down']);
  });

  it('refuses a blackhole against a stack without the FIS template output', () => {
    const stacks = Object.fromEntries(config.regions.map((r) => [r.name, outputs(r.name)]));
    const { FisBlackholeTemplateId: _none, ...old } = outputs('us-east-1');
    const replicas = ['ap-southeast-1', 'eu-west-1', 'us-east-1'];
    expect(
      checkDeployment(
        config,
        { stacks: { ...stacks, 'us-east-1': old }, tableReplicas: replicas },
        {
          region: 'us-east-1',
          mode: 'blackhole',
        },
      ),
    ).toEqual([
      'stack mrwebrtc-us-east-1 has no FisBlackholeTemplateId output; deploy the current stack to get the blackhole drill',
    ]);
    expect(
      checkDeployment(
        config,
        { stacks, tableReplicas: replicas },
        { region: 'us-east-1', mode: 'blackhole' },
      ),
    ).toEqual([]);
  });
});
