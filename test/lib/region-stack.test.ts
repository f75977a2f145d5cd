import { Match, Template } from 'aws-cdk-lib/assertions';
import { TABLE_KEYS } from '../../runtime/store/schema';
import { MEDIA_DRAIN_HOOK_NAME } from '../../lib/media-fleet';
import {
  type Json,
  resourcesOfType,
  synthProject,
  type SynthesizedProject,
  TEST_ACCOUNT,
} from './support/synth';

// Non-default values throughout, so every assertion proves the value came from the config.
const CONFIG = {
  appName: 'rtcdemo',
  domain: 'rtc.example.org',
  hostedZoneId: 'Z1111111111111PRIMARY',
  backupDomain: 'rtc-fallback.example.com',
  backupHostedZoneId: 'Z2222222222222BACKUP',
  regions: [
    'us-east-1',
    {
      name: 'eu-west-1',
      vpcCidr: '10.70.0.0/16',
      mediaInstanceType: 'c7g.2xlarge',
      mediaMinSize: 3,
      mediaMaxSize: 12,
      lbDesiredCount: 4,
    },
  ],
  healthCheck: { requestIntervalSeconds: 30, failureThreshold: 5 },
  lbContainerPort: 8443,
  corsOrigins: ['https://meet.rtc.example.org', 'http://localhost:5173'],
  mediaSignalingPort: 7100,
  mediaRtcPortMin: 41000,
  mediaRtcPortMax: 41999,
};
const REGION = 'eu-west-1';
const STACK = 'rtcdemo-eu-west-1';
const OWN_TABLE_ARN = `arn:aws:dynamodb:${REGION}:${TEST_ACCOUNT}:table/rtcdemo-rooms`;
const OWN_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${TEST_ACCOUNT}:secret:rtcdemo/join-token-secret`;

let project: SynthesizedProject;
let template: Template;
let raw: Record<string, Json>;

beforeAll(() => {
  project = synthProject(CONFIG);
  raw = project.template(STACK);
  template = Template.fromJSON(raw);
});
afterAll(() => project.dispose());

function logicalIdOf(type: string, props: Record<string, unknown> = {}): string {
  const found = template.findResources(type, { Properties: Match.objectLike(props) });
  const ids = Object.keys(found);
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** The launch template's user data with tokens shown as `<token>`. */
function userDataText(): string {
  const lt = Object.values(resourcesOfType(raw, 'AWS::EC2::LaunchTemplate'))[0];
  const parts: unknown[] = lt.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
  return parts.map((p) => (typeof p === 'string' ? p : '<token>')).join('');
}

describe('region stack: DNS', () => {
  it('has an HTTPS health check of its own region name with the configured interval and threshold', () => {
    template.resourceCountIs('AWS::Route53::HealthCheck', 1);
    template.hasResourceProperties('AWS::Route53::HealthCheck', {
      HealthCheckConfig: {
        Type: 'HTTPS',
        FullyQualifiedDomainName: 'eu-west-1.api.rtc.example.org',
        Port: 443,
        ResourcePath: '/health',
        EnableSNI: true,
        RequestInterval: 30,
        FailureThreshold: 5,
      },
    });
  });

  it('adds its latency record to api.<domain> with Region, SetIdentifier, the health check and target health', () => {
    const healthCheckId = logicalIdOf('AWS::Route53::HealthCheck');
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'api.rtc.example.org.',
      Type: 'A',
      HostedZoneId: 'Z1111111111111PRIMARY',
      Region: REGION,
      SetIdentifier: REGION,
      HealthCheckId: { Ref: healthCheckId },
      AliasTarget: Match.objectLike({ EvaluateTargetHealth: true }),
    });
  });

  it('names the region directly with a simple alias record', () => {
    const record = Object.values(resourcesOfType(raw, 'AWS::Route53::RecordSet')).find(
      (r) => r.Properties.Name === 'eu-west-1.api.rtc.example.org.',
    );
    expect(record).toBeDefined();
    expect(record.Properties.HostedZoneId).toBe('Z1111111111111PRIMARY');
    expect(record.Properties.AliasTarget).toBeDefined();
    for (const routing of ['Region', 'Weight', 'SetIdentifier', 'GeoLocation', 'Failover']) {
      expect(record.Properties).not.toHaveProperty(routing);
    }
  });

  it('adds a weighted backup record in the backup zone gated by the same health check', () => {
    const healthCheckId = logicalIdOf('AWS::Route53::HealthCheck');
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'api-backup.rtc-fallback.example.com.',
      Type: 'A',
      HostedZoneId: 'Z2222222222222BACKUP',
      SetIdentifier: REGION,
      Weight: Match.anyValue(),
      HealthCheckId: { Ref: healthCheckId },
      AliasTarget: Match.objectLike({ EvaluateTargetHealth: true }),
      Region: Match.absent(),
    });
    template.resourceCountIs('AWS::Route53::RecordSet', 3);
  });

  it('validates one certificate for all three names, each in the zone that holds it', () => {
    const cert = Object.values(resourcesOfType(raw, 'AWS::CertificateManager::Certificate'));
    expect(cert).toHaveLength(1);
    expect(cert[0].Properties).toMatchObject({
      DomainName: 'eu-west-1.api.rtc.example.org',
      ValidationMethod: 'DNS',
    });
    expect([...cert[0].Properties.SubjectAlternativeNames].sort()).toEqual([
      'api-backup.rtc-fallback.example.com',
      'api.rtc.example.org',
    ]);
    expect(cert[0].Properties.DomainValidationOptions).toEqual(
      expect.arrayContaining([
        { DomainName: 'api.rtc.example.org', HostedZoneId: 'Z1111111111111PRIMARY' },
        { DomainName: 'eu-west-1.api.rtc.example.org', HostedZoneId: 'Z1111111111111PRIMARY' },
        { DomainName: 'api-backup.rtc-fallback.example.com', HostedZoneId: 'Z2222222222222BACKUP' },
      ]),
    );
  });
});

describe('region stack: LB service', () => {
  it('serves HTTPS only, on an internet-facing ALB with an explicit TLS 1.3 policy', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
    });
    const listeners = Object.values(resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::Listener'));
    expect(listeners).toHaveLength(1);
    expect(listeners[0].Properties).toMatchObject({ Port: 443, Protocol: 'HTTPS' });
    expect(listeners[0].Properties.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13-/);
    expect(listeners[0].Properties.Certificates).toHaveLength(1);
    // Port 443 is the only one the ALB's security group opens to the world.
    const albSg = Object.values(resourcesOfType(raw, 'AWS::EC2::SecurityGroup')).find((sg) =>
      (sg.Properties.SecurityGroupIngress ?? []).some((rule: Json) => rule.FromPort === 443),
    );
    expect(albSg.Properties.SecurityGroupIngress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
    ]);
  });

  it('health-checks targets on /health', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/health',
      Port: 8443,
      TargetType: 'ip',
    });
  });

  it('runs on Fargate with the configured count and the env var contract of runtime/lb/server.ts', () => {
    template.hasResourceProperties('AWS::ECS::Service', { LaunchType: 'FARGATE', DesiredCount: 4 });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      ContainerDefinitions: [
        Match.objectLike({
          PortMappings: [{ ContainerPort: 8443, Protocol: 'tcp' }],
          Environment: Match.arrayWith([
            { Name: 'REGION', Value: REGION },
            { Name: 'TABLE_NAME', Value: 'rtcdemo-rooms' },
            { Name: 'PORT', Value: '8443' },
            { Name: 'PUBLIC_API_URL', Value: 'https://eu-west-1.api.rtc.example.org' },
            { Name: 'TRUST_PROXY_HOPS', Value: '1' },
            { Name: 'CORS_ORIGINS', Value: 'https://meet.rtc.example.org,http://localhost:5173' },
          ]),
          // By name: ECS resolves it in the task's own region (a partial ARN would fail at task start).
          Secrets: [{ Name: 'TOKEN_SECRET', ValueFrom: 'rtcdemo/join-token-secret' }],
        }),
      ],
    });
  });

  it('scales on CPU and on requests per target', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 4 });
    for (const metric of ['ECSServiceAverageCPUUtilization', 'ALBRequestCountPerTarget']) {
      template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
        PolicyType: 'TargetTrackingScaling',
        TargetTrackingScalingPolicyConfiguration: Match.objectLike({
          PredefinedMetricSpecification: Match.objectLike({ PredefinedMetricType: metric }),
        }),
      });
    }
  });
});

describe('region stack: media fleet', () => {
  it('runs an Auto Scaling group in public subnets with the configured size', () => {
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '3', MaxSize: '12' });
    const asg = Object.values(resourcesOfType(raw, 'AWS::AutoScaling::AutoScalingGroup'))[0];
    const subnets = resourcesOfType(raw, 'AWS::EC2::Subnet');
    for (const ref of asg.Properties.VPCZoneIdentifier) {
      expect(subnets[ref.Ref].Properties.Tags).toEqual(
        expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Public' }]),
      );
    }
  });

  it('launches with IMDSv2 required, a public IP, no key pair and an AMI of the instance architecture', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        InstanceType: 'c7g.2xlarge',
        MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
        NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: true })],
        KeyName: Match.absent(),
      }),
    });
    expect(Object.keys(raw.Parameters).some((p) => p.includes('arm64'))).toBe(true);
  });

  it('opens only the RTC range to the world and the signaling port to the LB service', () => {
    const mediaSg = Object.entries(resourcesOfType(raw, 'AWS::EC2::SecurityGroup')).find(([, sg]) =>
      (sg.Properties.SecurityGroupIngress ?? []).some((rule: Json) => rule.FromPort === 41000),
    )!;
    const [mediaSgId, sg] = mediaSg;
    expect(sg.Properties.SecurityGroupIngress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'udp', FromPort: 41000, ToPort: 41999 }),
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 41000, ToPort: 41999 }),
    ]);
    const extraIngress = Object.values(resourcesOfType(raw, 'AWS::EC2::SecurityGroupIngress')).filter(
      (rule) => rule.Properties.GroupId['Fn::GetAtt']?.[0] === mediaSgId,
    );
    expect(extraIngress).toHaveLength(1);
    const lbServiceSgId = serviceSecurityGroupId();
    expect(extraIngress[0].Properties).toMatchObject({
      IpProtocol: 'tcp',
      FromPort: 7100,
      ToPort: 7100,
      SourceSecurityGroupId: { 'Fn::GetAtt': [lbServiceSgId, 'GroupId'] },
    });
  });

  it('scales on CPU and holds terminating instances in a drain lifecycle hook', () => {
    template.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ASGAverageCPUUtilization' },
      }),
    });
    template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      LifecycleHookName: MEDIA_DRAIN_HOOK_NAME,
      DefaultResult: 'CONTINUE',
      HeartbeatTimeout: Match.anyValue(),
    });
  });

  it('boots hosts with the media server env var contract and the drain watcher', () => {
    const script = userDataText();
    for (const line of [
      `REGION=${REGION}`,
      'TABLE_NAME=rtcdemo-rooms',
      'SIGNALING_PORT=7100',
      'RTC_MIN_PORT=41000',
      'RTC_MAX_PORT=41999',
      'LISTEN_HOST=0.0.0.0',
      'MEDIA_ENGINE=current',
      'SECRET_ID=rtcdemo/join-token-secret',
      `LIFECYCLE_HOOK_NAME=${MEDIA_DRAIN_HOOK_NAME}`,
    ]) {
      expect(script).toContain(`\n${line}\n`);
    }
    for (const perBoot of ['SERVER_ID=', 'PUBLIC_IP=', 'PRIVATE_ENDPOINT=ws://', 'TOKEN_SECRET=']) {
      expect(script).toContain(perBoot);
    }
    expect(script).toContain('meta-data/autoscaling/target-lifecycle-state');
    expect(script).toContain('complete-lifecycle-action');
    expect(script).toMatch(/DRAIN_TIMEOUT_MS=\d+/);
  });
});

function serviceSecurityGroupId(): string {
  const service = Object.values(resourcesOfType(raw, 'AWS::ECS::Service'))[0];
  return service.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]['Fn::GetAtt'][0];
}

describe('region stack: network, IAM and outputs', () => {
  it('has a two-AZ VPC with the configured CIDR and a DynamoDB gateway endpoint', () => {
    template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.70.0.0/16' });
    template.resourceCountIs('AWS::EC2::Subnet', 4);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({
        'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.dynamodb']],
      }),
    });
  });

  it('scopes every DynamoDB permission to its own replica and its one GSI', () => {
    const statements = Object.values(resourcesOfType(raw, 'AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Json[],
    );
    const dynamo = statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('dynamodb:')));
    expect(dynamo).toHaveLength(2); // LB task role and media instance role
    for (const s of dynamo) {
      expect(s.Resource).toEqual([OWN_TABLE_ARN, `${OWN_TABLE_ARN}/index/${TABLE_KEYS.gsiName}`]);
      expect([s.Action].flat()).not.toContain('dynamodb:*');
    }
  });

  it("reads only its own region's replica of the secret", () => {
    const statements = Object.values(resourcesOfType(raw, 'AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Json[],
    );
    const secretReads = statements.filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secretReads.length).toBeGreaterThanOrEqual(2);
    for (const s of secretReads) expect(s.Resource).toBe(`${OWN_SECRET_ARN}-??????`);
  });

  it('lets a media host complete lifecycle actions only on its own group', () => {
    const asgId = logicalIdOf('AWS::AutoScaling::AutoScalingGroup');
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'autoscaling:CompleteLifecycleAction',
            Effect: 'Allow',
            Resource: {
              'Fn::Join': [
                '',
                [
                  `arn:aws:autoscaling:${REGION}:${TEST_ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/`,
                  { Ref: asgId },
                ],
              ],
            },
          },
        ]),
      },
    });
  });

  it('outputs what the client config generator reads', () => {
    template.hasOutput('ApiUrl', { Value: 'https://api.rtc.example.org' });
    template.hasOutput('BackupApiUrl', { Value: 'https://api-backup.rtc-fallback.example.com' });
    template.hasOutput('RegionApiUrl', { Value: 'https://eu-west-1.api.rtc.example.org' });
    template.hasOutput('Region', { Value: REGION });
    for (const output of Object.values(raw.Outputs as Record<string, Json>))
      expect(output.Export).toBeUndefined();
  });
});
