import { Match, Template } from 'aws-cdk-lib/assertions';
import { resourcesOfType, synthProject, type SynthesizedProject, type Json } from './support/synth';

const IDS = {
  'us-east-1': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11',
  'eu-west-1': '7d1e9a40-3c2b-4f6e-8a15-c0ffee123456',
};

describe('optional monitoring stack (Route 53 health checks, us-east-1)', () => {
  let project: SynthesizedProject;
  beforeAll(() => {
    project = synthProject({
      tableOwnerRegion: 'eu-west-1',
      regions: ['us-east-1', 'eu-west-1'],
      monitoring: { healthCheckIds: IDS },
    });
  });
  afterAll(() => project.dispose());

  it('lives in us-east-1, where Route 53 publishes health-check metrics, and nothing depends on it', () => {
    expect(project.stacks.monitoringStack?.region).toBe('us-east-1');
    for (const artifact of project.assembly.stacks) {
      expect(artifact.dependencies.map((d) => d.id)).not.toContain('mrwebrtc-monitoring');
    }
    const own = project.assembly.getStackByName('mrwebrtc-monitoring');
    expect(own.dependencies.map((d) => d.id).filter((id) => !id.endsWith('.assets'))).toEqual([]);
  });

  it('alarms per region on HealthCheckStatus, and on two regions at once', () => {
    const raw = project.template('mrwebrtc-monitoring');
    const template = Template.fromJSON(raw);
    for (const [region, id] of Object.entries(IDS)) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `mrwebrtc-${region}-Route53HealthCheck`,
        Namespace: 'AWS/Route53',
        MetricName: 'HealthCheckStatus',
        Dimensions: [{ Name: 'HealthCheckId', Value: id }],
        ComparisonOperator: 'LessThanThreshold',
        Threshold: 1,
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'mrwebrtc-SeveralRegionsUnhealthy',
      Metrics: Match.anyValue(),
    });
    const topic = Object.keys(resourcesOfType(raw, 'AWS::SNS::Topic'))[0];
    for (const alarm of Object.values(resourcesOfType(raw, 'AWS::CloudWatch::Alarm')) as Json[]) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
    }
  });

  it('is left out when no health check ids are configured', () => {
    const without = synthProject();
    try {
      expect(without.stacks.monitoringStack).toBeUndefined();
    } finally {
      without.dispose();
    }
  });
});
