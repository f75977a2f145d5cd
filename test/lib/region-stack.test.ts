import { Match, Template } from 'aws-cdk-lib/assertions';
import { TABLE_KEYS } from '../../runtime/store/schema';
import { DEFAULT_LIMITS } from '../../runtime/lb/config';
import { ALB_IDLE_TIMEOUT, PUBLIC_PATH_PATTERNS } from '../../lib/lb-service';
import { MEDIA_BOOT_TIMEOUT, MEDIA_DRAIN_HOOK_NAME } from '../../lib/media-fleet';
import { HEALTH_FAILURES_BEFORE_REPLACE, HEALTH_POLL_SECONDS } from '../../lib/media-host-script';
import { CANARY_STEPS } from '../../lib/functions/join-canary';
import { BLACKHOLE_ACTION_ID } from '../../lib/region-blackhole';
import {
  deployTimeValue,
  forAllValuesStringLike,
  iamResourceMatches,
  nullFalse,
  secretsManagerFullArnPattern,
} from './support/aws-rules';
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
  tableOwnerRegion: 'eu-west-1' as const,
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
  monitoring: { alarmEmails: ['oncall@rtc-ops.net'] },
};
const REGION = 'eu-west-1';
const STACK = 'rtcdemo-eu-west-1';
const OWN_TABLE_ARN = `arn:aws:dynamodb:${REGION}:${TEST_ACCOUNT}:table/rtcdemo-rooms`;

let project: SynthesizedProject;
let template: Template;
let raw: Record<string, Json>;

beforeAll(() => {
  project = synthProject(CONFIG);
  raw = project.template(STACK);
  template = Template.fromJSON(raw);
});
afterAll(() => project.dispose());

/** The media hosts' launch template's user data with tokens shown as `<token>`. */
function userDataText(): string {
  const lt = Object.entries(resourcesOfType(raw, 'AWS::EC2::LaunchTemplate')).find(([id]) =>
    id.startsWith('MediaFleet'),
  )![1];
  const parts: unknown[] = lt.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
  return parts.map((p) => (typeof p === 'string' ? p : '<token>')).join('');
}

const PRIMARY_DOMAIN = 'rtc.example.org';
const PRIMARY_ZONE = 'Z1111111111111PRIMARY';
const BACKUP_ZONE = 'Z2222222222222BACKUP';

/** Every record set of the API (the TURN relay's two are asserted in test/lib/turn-relay.test.ts). */
function apiRecords(): Json[] {
  return Object.values(resourcesOfType(raw, 'AWS::Route53::RecordSet')).filter(
    (r) => !String(r.Properties.Name).startsWith('turn.'),
  );
}

function healthCheckFor(name: string): [string, Json] {
  const found = Object.entries(resourcesOfType(raw, 'AWS::Route53::HealthCheck')).filter(
    ([, hc]) => hc.Properties.HealthCheckConfig.FullyQualifiedDomainName === name,
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

function underDomain(name: string, domain: string): boolean {
  const n = name.replace(/\.$/, '');
  return n === domain || n.endsWith(`.${domain}`);
}

describe('region stack: DNS', () => {
  it('has one HTTPS health check per name family, each probing its own region name', () => {
    template.resourceCountIs('AWS::Route53::HealthCheck', 2);
    for (const fqdn of ['eu-west-1.api.rtc.example.org', 'eu-west-1.api-backup.rtc-fallback.example.com']) {
      template.hasResourceProperties('AWS::Route53::HealthCheck', {
        HealthCheckConfig: {
          Type: 'HTTPS',
          FullyQualifiedDomainName: fqdn,
          Port: 443,
          ResourcePath: '/health',
          // Route 53 sends the FQDN in the client_hello only with SNI enabled; without it the ALB may
          // answer a certificate that does not name the FQDN (Route 53 HealthCheckConfig.EnableSNI).
          EnableSNI: true,
          RequestInterval: 30,
          FailureThreshold: 5,
        },
      });
    }
  });

  it('adds its latency record to api.<domain> with Region, SetIdentifier, the primary health check and target health', () => {
    const [healthCheckId] = healthCheckFor('eu-west-1.api.rtc.example.org');
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'api.rtc.example.org.',
      Type: 'A',
      HostedZoneId: PRIMARY_ZONE,
      Region: REGION,
      SetIdentifier: REGION,
      HealthCheckId: { Ref: healthCheckId },
      AliasTarget: Match.objectLike({ EvaluateTargetHealth: true }),
    });
  });

  it.each([
    ['eu-west-1.api.rtc.example.org.', PRIMARY_ZONE],
    ['eu-west-1.api-backup.rtc-fallback.example.com.', BACKUP_ZONE],
  ])('names the region directly in each family with a simple alias record (%s)', (name, zone) => {
    const record = apiRecords().find((r) => r.Properties.Name === name);
    expect(record).toBeDefined();
    expect(record.Properties.HostedZoneId).toBe(zone);
    expect(record.Properties.AliasTarget).toBeDefined();
    for (const routing of ['Region', 'Weight', 'SetIdentifier', 'GeoLocation', 'Failover']) {
      expect(record.Properties).not.toHaveProperty(routing);
    }
  });

  it('adds a weighted api-backup record in the backup zone gated by the backup health check', () => {
    const [healthCheckId] = healthCheckFor('eu-west-1.api-backup.rtc-fallback.example.com');
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'api-backup.rtc-fallback.example.com.',
      Type: 'A',
      HostedZoneId: BACKUP_ZONE,
      SetIdentifier: REGION,
      Weight: Match.anyValue(),
      HealthCheckId: { Ref: healthCheckId },
      AliasTarget: Match.objectLike({ EvaluateTargetHealth: true }),
      Region: Match.absent(),
    });
    expect(apiRecords()).toHaveLength(4);
  });

  it('keeps the backup family in the backup zone only, and the primary family in the primary zone only', () => {
    for (const record of apiRecords()) {
      const backupName = underDomain(record.Properties.Name, CONFIG.backupDomain);
      expect([record.Properties.Name, record.Properties.HostedZoneId]).toEqual([
        record.Properties.Name,
        backupName ? BACKUP_ZONE : PRIMARY_ZONE,
      ]);
      if (!backupName) expect(underDomain(record.Properties.Name, PRIMARY_DOMAIN)).toBe(true);
    }
    expect(apiRecords().filter((r) => r.Properties.HostedZoneId === BACKUP_ZONE)).toHaveLength(2);
  });

  it('gates no backup record by a health check that names the primary domain', () => {
    const checks = resourcesOfType(raw, 'AWS::Route53::HealthCheck');
    const backupRecords = apiRecords().filter((r) => r.Properties.HostedZoneId === BACKUP_ZONE);
    for (const record of backupRecords.filter((r) => r.Properties.HealthCheckId)) {
      const check = checks[record.Properties.HealthCheckId.Ref];
      expect(check).toBeDefined();
      const config = check.Properties.HealthCheckConfig;
      expect(underDomain(String(config.FullyQualifiedDomainName ?? ''), PRIMARY_DOMAIN)).toBe(false);
      expect(JSON.stringify(check)).not.toContain(PRIMARY_DOMAIN);
    }
  });

  it('validates one certificate for both families, each name in the zone that holds it', () => {
    // The TURN relay has a certificate of its own (test/lib/turn-relay.test.ts).
    const cert = Object.entries(resourcesOfType(raw, 'AWS::CertificateManager::Certificate'))
      .filter(([id]) => id.startsWith('ApiCertificate'))
      .map(([, c]) => c);
    expect(cert).toHaveLength(1);
    expect(cert[0].Properties).toMatchObject({
      DomainName: 'eu-west-1.api.rtc.example.org',
      ValidationMethod: 'DNS',
    });
    expect([...cert[0].Properties.SubjectAlternativeNames].sort()).toEqual([
      'api-backup.rtc-fallback.example.com',
      'api.rtc.example.org',
      'eu-west-1.api-backup.rtc-fallback.example.com',
    ]);
    const options: { DomainName: string; HostedZoneId: string }[] =
      cert[0].Properties.DomainValidationOptions;
    expect(options).toEqual(
      expect.arrayContaining([
        { DomainName: 'api.rtc.example.org', HostedZoneId: PRIMARY_ZONE },
        { DomainName: 'eu-west-1.api.rtc.example.org', HostedZoneId: PRIMARY_ZONE },
        { DomainName: 'api-backup.rtc-fallback.example.com', HostedZoneId: BACKUP_ZONE },
        { DomainName: 'eu-west-1.api-backup.rtc-fallback.example.com', HostedZoneId: BACKUP_ZONE },
      ]),
    );
    // ACM DNS validation writes each name's CNAME in the HostedZoneId given for it: no backup name may
    // validate through the primary zone, or renewing it would need the zone whose outage it covers.
    for (const o of options)
      expect(o.HostedZoneId).toBe(
        underDomain(o.DomainName, CONFIG.backupDomain) ? BACKUP_ZONE : PRIMARY_ZONE,
      );
  });

  it('tells the LB its backup name and domain, so joins through backup names stay in them', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'BACKUP_API_URL', Value: 'https://eu-west-1.api-backup.rtc-fallback.example.com' },
            { Name: 'BACKUP_DOMAIN', Value: 'rtc-fallback.example.com' },
          ]),
        }),
      ],
    });
  });
});

describe('region stack: LB service', () => {
  it('serves HTTPS only, on an internet-facing ALB with an explicit TLS 1.3 policy', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
    });
    const listeners = albListeners();
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
            // Join answers name `turn.` + the serving region's API host: the relay's record and certificate.
            { Name: 'TURN_HOST_PREFIX', Value: 'turn.' },
            { Name: 'TURN_PORT', Value: '3478' },
            { Name: 'TURN_TLS_PORT', Value: '443' },
            { Name: 'TURN_TTL_SECONDS', Value: String(8 * 3600) },
          ]),
          Secrets: [
            { Name: 'JOIN_TOKEN_KEYS', ValueFrom: Match.anyValue() },
            { Name: 'MEDIA_TOKEN_KEYS', ValueFrom: Match.anyValue() },
            { Name: 'TURN_SECRET', ValueFrom: Match.anyValue() },
          ],
        }),
      ],
    });
  });

  it('gives ECS every secret as the full ARN of the Secrets Manager secret in its own region', () => {
    const pattern = secretsManagerFullArnPattern(REGION, TEST_ACCOUNT);
    const containers = Object.values(resourcesOfType(raw, 'AWS::ECS::TaskDefinition')).flatMap(
      (td) => td.Properties.ContainerDefinitions as Json[],
    );
    const secrets = containers.flatMap((c) => (c.Secrets ?? []) as Json[]);
    expect(secrets.length).toBeGreaterThan(0);
    const resolved = Object.fromEntries(
      secrets.map((secret) => [secret.Name, deployTimeValue(raw, secret.ValueFrom, TEST_ACCOUNT)]),
    );
    for (const arn of Object.values(resolved)) expect(arn).toMatch(pattern);
    expect(resolved.JOIN_TOKEN_KEYS).toContain(':secret:rtcdemo/join-token-keys-');
    expect(resolved.MEDIA_TOKEN_KEYS).toContain(':secret:rtcdemo/media-token-keys-');
    expect(resolved.TURN_SECRET).toMatch(pattern);
    expect(resolved.TURN_SECRET).toContain(`:${REGION}:`);
    expect(resolved.TURN_SECRET).toContain(':secret:rtcdemo/turn-secret-');
  });

  it('signs TURN credentials with the very secret replica its relay hosts read', () => {
    const lbSecret = (
      Object.values(resourcesOfType(raw, 'AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions[0]
        .Secrets as Json[]
    ).find((s) => s.Name === 'TURN_SECRET')!.ValueFrom;
    // One lookup of the TURN secret in this region feeds both the LB and the relay's boot script.
    const lookups = Object.entries(raw.Resources as Record<string, Json>).filter(
      ([, r]) => String(r.Type).startsWith('Custom::') && r.Properties.Create.includes('turn-secret'),
    );
    expect(lookups).toHaveLength(1);
    expect(JSON.stringify(lbSecret)).toContain(lookups[0]![0]);
  });

  it('looks the ARNs up in its own region, by name, with no reference to another stack', () => {
    const lookups = Object.values(raw.Resources as Record<string, Json>).filter((r) =>
      String(r.Type).startsWith('Custom::'),
    );
    // The two key sets, and the TURN relay's secret.
    expect(lookups).toHaveLength(3);
    for (const lookup of lookups) {
      for (const phase of ['Create', 'Update']) {
        const call = JSON.parse(lookup.Properties[phase]);
        expect(call).toMatchObject({ service: 'SecretsManager', action: 'DescribeSecret', region: REGION });
        expect(call.parameters.SecretId).toMatch(/^rtcdemo\/((join|media)-token-keys|turn-secret)$/);
      }
      expect(lookup.Properties.InstallLatestAwsSdk).toBe(false);
    }
  });

  it("lets the task's execution role read exactly the secrets it is given", () => {
    const executionRoleId = Object.values(resourcesOfType(raw, 'AWS::ECS::TaskDefinition'))[0].Properties
      .ExecutionRoleArn['Fn::GetAtt'][0];
    const readable = grantedResources(executionRoleId, 'secretsmanager:GetSecretValue').map((r) =>
      deployTimeValue(raw, r, TEST_ACCOUNT),
    );
    const secretArns = (
      Object.values(resourcesOfType(raw, 'AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions[0]
        .Secrets as Json[]
    ).map((s) => deployTimeValue(raw, s.ValueFrom, TEST_ACCOUNT));
    for (const arn of secretArns) {
      expect(readable.some((pattern) => iamResourceMatches(pattern, arn))).toBe(true);
    }
    // Nothing else: no wildcard over other secrets.
    expect(readable).toHaveLength(secretArns.length);
  });

  it('keeps idle connections open in the service longer than the ALB does (no 502 races)', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'idle_timeout.timeout_seconds', Value: String(ALB_IDLE_TIMEOUT.toSeconds()) },
      ]),
    });
    // ELB user guide: configure the application's idle timeout larger than the load balancer's.
    expect(DEFAULT_LIMITS.keepAliveTimeoutMs).toBeGreaterThan(ALB_IDLE_TIMEOUT.toMilliseconds());
  });

  it('does not forward /metrics (or any path the API does not serve) through the public ALB', () => {
    const listener = albListeners()[0];
    expect(listener.Properties.DefaultActions).toEqual([
      expect.objectContaining({
        Type: 'fixed-response',
        FixedResponseConfig: expect.objectContaining({ StatusCode: '404' }),
      }),
    ]);
    const forwarded = Object.values(
      resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::ListenerRule'),
    ).flatMap((rule) => {
      expect(rule.Properties.Actions.map((a: Json) => a.Type)).toEqual(['forward']);
      return rule.Properties.Conditions.flatMap((c: Json) => {
        expect(c.Field).toBe('path-pattern');
        return c.PathPatternConfig.Values as string[];
      });
    });
    expect(forwarded.sort()).toEqual([...PUBLIC_PATH_PATTERNS].sort());
    // ALB path patterns: * matches any characters, ? one, case-sensitively.
    const reaches = (path: string) => forwarded.some((p) => iamResourceMatches(p, path));
    // `/cascade`: cascading's control channel between two regions' media servers goes through the ALB
    // (media hosts expose no control port).
    for (const path of [
      '/v1/rooms/a/join',
      '/v1/rooms/a/signal',
      '/v1/rooms/a/cascade',
      '/v1/ping',
      '/v1/regions',
      '/health',
    ]) {
      expect(reaches(path)).toBe(true);
    }
    for (const path of ['/metrics', '/metrics/', '/%6Detrics', '/Metrics', '/health/../metrics', '/']) {
      expect({ path, reaches: reaches(path) }).toEqual({ path, reaches: false });
    }
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
    // The media fleet's group, beside the TURN relay's own (test/lib/turn-relay.test.ts).
    const [, asg] = mediaGroup();
    expect(asg.Properties).toMatchObject({ MinSize: '3', MaxSize: '12' });
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
    // The RTC range carries cascading's pipes too (3.8 pipes bind from the worker's RTC ports, 3.27's
    // are given the same range): other regions' media hosts send to it from their public addresses.
    // Outbound is open: pipes to other regions and the control channel to their ALBs (HTTPS).
    expect(sg.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: '-1' }),
    ]);
    expect(sg.Properties.SecurityGroupIngress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'udp', FromPort: 41000, ToPort: 41999 }),
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 41000, ToPort: 41999 }),
    ]);
    const extraIngress = Object.values(resourcesOfType(raw, 'AWS::EC2::SecurityGroupIngress')).filter(
      (rule) => rule.Properties.GroupId['Fn::GetAtt']?.[0] === mediaSgId,
    );
    // Signaling from the LB service, and relayed media from the TURN relay (on the RTC range, which is
    // open to the world anyway).
    expect(extraIngress).toHaveLength(2);
    expect(extraIngress[1].Properties).toMatchObject({
      IpProtocol: 'udp',
      FromPort: 41000,
      ToPort: 41999,
      SourceSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/^TurnRelaySecurityGroup/), 'GroupId'] },
    });
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
      'MEDIA_TOKEN_KEYS_SECRET_ARN=<token>',
      `LIFECYCLE_HOOK_NAME=${MEDIA_DRAIN_HOOK_NAME}`,
    ]) {
      expect(script).toContain(`\n${line}\n`);
    }
    for (const perBoot of ['SERVER_ID=', 'PUBLIC_IP=', 'PRIVATE_ENDPOINT=ws://', 'MEDIA_TOKEN_KEYS=']) {
      expect(script).toContain(perBoot);
    }
    // Media hosts never see the join keys, nor the old single secret.
    expect(script).not.toMatch(/JOIN_TOKEN_KEYS|TOKEN_SECRET|join-token/);
    expect(script).toContain('meta-data/autoscaling/target-lifecycle-state');
    expect(script).toContain('complete-lifecycle-action');
    expect(script).toMatch(/DRAIN_TIMEOUT_MS=\d+/);
  });

  it('reads the media keys on a line of their own, so a failed read stops the start', () => {
    const script = userDataText();
    const read = script.split('\n').find((l) => l.includes('get-secret-value'))!;
    expect(read).toMatch(/^keys=\$\(aws secretsmanager get-secret-value .*\$MEDIA_TOKEN_KEYS_SECRET_ARN/);
    // No read hidden inside an echo or printf, where set -e would not see its status.
    expect(script).not.toMatch(/(echo|printf)[^\n]*\$\(aws /);
    const prepare = script.slice(
      script.indexOf('media-server-prepare <<'),
      script.indexOf('media-server-run <<'),
    );
    expect(prepare).toContain('set -euo pipefail');
    expect(script).toContain('ExecStartPre=/usr/local/sbin/media-server-prepare');
  });

  it('signals CloudFormation from the boot: creation policy and a rolling update that waits for signals', () => {
    const [asgId, asg] = mediaGroup();
    expect(asg.CreationPolicy.ResourceSignal).toEqual({
      Count: 3,
      Timeout: MEDIA_BOOT_TIMEOUT.toIsoString(),
    });
    expect(asg.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      WaitOnResourceSignals: true,
      MaxBatchSize: 1,
      MinInstancesInService: 3,
      MinSuccessfulInstancesPercent: 100,
      PauseTime: MEDIA_BOOT_TIMEOUT.toIsoString(),
    });
    // CloudFormation: MinInstancesInService must be less than MaxSize.
    expect(asg.UpdatePolicy.AutoScalingRollingUpdate.MinInstancesInService).toBeLessThan(
      Number(asg.Properties.MaxSize),
    );
    const script = userDataText();
    expect(script).toContain('--logical-resource-id ' + asgId);
    expect(script).toMatch(/signal-resource .*--stack-name <token>/s);
    expect(script).toContain('boot_signal SUCCESS');
    expect(script).toMatch(/trap '.*boot_signal FAILURE.*' EXIT/);
    // SUCCESS only after the media server answered its health endpoint.
    expect(
      script.indexOf('until curl -fsS --max-time 3 -o /dev/null http://127.0.0.1:7100/health'),
    ).toBeLessThan(script.indexOf('boot_signal SUCCESS'));
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          { Action: 'cloudformation:SignalResource', Effect: 'Allow', Resource: { Ref: 'AWS::StackId' } },
        ]),
      },
    });
  });

  it('replaces a host whose media server stays down, and leaves a draining host alone', () => {
    const script = userDataText();
    const watch = script.slice(script.indexOf('media-health-watch <<'));
    expect(watch).toContain(`while sleep ${HEALTH_POLL_SECONDS}; do`);
    expect(watch).toContain('"$HEALTH_URL"');
    expect(script).toContain('HEALTH_URL=http://127.0.0.1:7100/health');
    expect(watch).toContain(`-ge ${HEALTH_FAILURES_BEFORE_REPLACE} ]`);
    expect(watch).toContain('target-lifecycle-state 2>/dev/null)" = InService ]');
    expect(watch).toContain('set-instance-health');
    expect(watch).toContain('--health-status Unhealthy');
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth'],
          }),
        ]),
      },
    });
  });

  it('scales in the hosts with the fewest rooms first, through a function Auto Scaling may invoke', () => {
    const [, asg] = mediaGroup();
    const [first, ...rest] = asg.Properties.TerminationPolicies;
    const fnId = first['Fn::GetAtt'][0];
    expect(raw.Resources[fnId].Type).toBe('AWS::Lambda::Function');
    // Auto Scaling user guide: the Lambda function comes first; it has two seconds.
    expect(rest).toEqual(['OldestLaunchTemplate', 'Default']);
    expect(raw.Resources[fnId].Properties.Timeout).toBeLessThanOrEqual(2);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
      Principal: `arn:aws:iam::${TEST_ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    });
  });

  it('gives hosts Session Manager access and no SSH', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })],
      }),
      ManagedPolicyArns: [
        {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore'],
          ],
        },
      ],
    });
    const sgs = Object.values(resourcesOfType(raw, 'AWS::EC2::SecurityGroup'));
    for (const sg of sgs) {
      for (const rule of sg.Properties.SecurityGroupIngress ?? []) expect(rule.FromPort).not.toBe(22);
    }
  });
});

describe('region stack: operations', () => {
  const alarms = () => Object.values(resourcesOfType(raw, 'AWS::CloudWatch::Alarm'));
  const alarmOn = (namespace: string, metricName: string) =>
    alarms().filter(
      (a) =>
        (a.Properties.Namespace === namespace && a.Properties.MetricName === metricName) ||
        (a.Properties.Metrics ?? []).some(
          (m: Json) =>
            m.MetricStat?.Metric?.Namespace === namespace && m.MetricStat?.Metric?.MetricName === metricName,
        ),
    );

  it('alarms on ALB 5xx, target health, ECS running tasks, media hosts and load, table replication and throttles', () => {
    for (const [namespace, metric] of [
      ['AWS/ApplicationELB', 'HTTPCode_ELB_5XX_Count'],
      ['AWS/ApplicationELB', 'HTTPCode_Target_5XX_Count'],
      ['AWS/ApplicationELB', 'UnHealthyHostCount'],
      ['AWS/ApplicationELB', 'HealthyHostCount'],
      ['ECS/ContainerInsights', 'RunningTaskCount'],
      ['AWS/AutoScaling', 'GroupDesiredCapacity'],
      ['AWS/EC2', 'CPUUtilization'],
      ['AWS/DynamoDB', 'ReadThrottleEvents'],
      ['AWS/DynamoDB', 'WriteThrottleEvents'],
    ]) {
      expect({ metric, alarms: alarmOn(namespace!, metric!).length }).toEqual({ metric, alarms: 1 });
    }
    // Replication latency without naming a receiving region: a Metrics Insights query over this table.
    const replication = alarms().filter((a) =>
      (a.Properties.Metrics ?? []).some((m: Json) =>
        String(m.Expression ?? '').includes('ReplicationLatency'),
      ),
    );
    expect(replication).toHaveLength(1);
    expect(replication[0].Properties.Metrics[0].Expression).toBe(
      `SELECT MAX(ReplicationLatency) FROM SCHEMA("AWS/DynamoDB", ReceivingRegion, TableName) WHERE TableName = 'rtcdemo-rooms'`,
    );
    // ECS and media thresholds follow the configured sizes.
    expect(alarmOn('ECS/ContainerInsights', 'RunningTaskCount')[0].Properties.Threshold).toBe(4);
    const inService = (group: string) =>
      alarmOn('AWS/AutoScaling', 'GroupInServiceInstances').filter((a) =>
        (a.Properties.Dimensions ?? []).some((d: Json) => String(d.Value?.Ref ?? '').startsWith(group)),
      );
    expect(inService('MediaFleet')).toHaveLength(1);
    expect(inService('MediaFleet')[0].Properties.Threshold).toBe(3);
    expect(alarmOn('AWS/AutoScaling', 'GroupDesiredCapacity')[0].Properties.Threshold).toBe(12);
  });

  it('watches the TURN relay like the media fleet: hosts in service and healthy relay targets', () => {
    const groups = resourcesOfType(raw, 'AWS::AutoScaling::AutoScalingGroup');
    const turnGroup = Object.keys(groups).find((id) => id.startsWith('TurnRelay'))!;
    const inService = alarmOn('AWS/AutoScaling', 'GroupInServiceInstances').filter((a) =>
      (a.Properties.Dimensions ?? []).some((d: Json) => d.Value?.Ref === turnGroup),
    );
    expect(inService).toHaveLength(1);
    expect(inService[0].Properties.ComparisonOperator).toBe('LessThanThreshold');
    expect(inService[0].Properties.TreatMissingData).toBe('breaching');
    const healthy = alarmOn('AWS/NetworkELB', 'HealthyHostCount');
    expect(healthy).toHaveLength(1);
    expect(healthy[0].Properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold' });
    // Its target group is the relay's UDP/TCP one, on the relay's own load balancer.
    const dims = Object.fromEntries(
      healthy[0].Properties.Dimensions.map((d: Json) => [d.Name, JSON.stringify(d.Value)]),
    );
    expect(dims.TargetGroup).toMatch(/TurnRelay/);
    expect(dims.LoadBalancer).toMatch(/TurnRelay/);
  });

  it('sends every alarm to an encrypted topic that the configured addresses subscribe to', () => {
    const topicId = Object.keys(resourcesOfType(raw, 'AWS::SNS::Topic'))[0]!;
    for (const alarm of [
      ...alarms(),
      ...Object.values(resourcesOfType(raw, 'AWS::CloudWatch::CompositeAlarm')),
    ]) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    }
    expect(raw.Resources[topicId].Properties.KmsMasterKeyId).toBeDefined();
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@rtc-ops.net',
    });
  });

  it('runs one join canary every minute through the region name and api-backup, and alarms per step', () => {
    template.resourceCountIs('AWS::Synthetics::Canary', 1);
    const canary = Object.values(resourcesOfType(raw, 'AWS::Synthetics::Canary'))[0];
    expect(canary.Properties.Schedule.Expression).toBe('rate(1 minute)');
    expect(canary.Properties.RunConfig.EnvironmentVariables).toMatchObject({
      REGION_API_URL: 'https://eu-west-1.api.rtc.example.org',
      BACKUP_API_URL: 'https://api-backup.rtc-fallback.example.com',
      CANARY_ROOM: 'canary-eu-west-1',
    });
    expect(canary.Properties.Code.Script).toContain('executeStep');
    const env = canary.Properties.RunConfig.EnvironmentVariables;
    expect(deployTimeValue(raw, env.JOIN_TOKEN_KEYS_SECRET_ARN, TEST_ACCOUNT)).toMatch(
      secretsManagerFullArnPattern(REGION, TEST_ACCOUNT),
    );
    const stepAlarms = alarms()
      .map((a) => (a.Properties.Dimensions ?? []).find((d: Json) => d.Name === 'StepName')?.Value)
      .filter(Boolean);
    expect(stepAlarms.sort()).toEqual(Object.values(CANARY_STEPS).sort());
    expect(alarmOn('CloudWatchSynthetics', 'SuccessPercent').length).toBe(4);
  });

  it('has a dashboard and a composite alarm for "this region cannot serve joins"', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'rtcdemo-eu-west-1' });
    template.resourceCountIs('AWS::CloudWatch::CompositeAlarm', 1);
  });

  it('deploys a FIS template that blackholes every subnet of the region, stopped by the api-backup alarm', () => {
    template.resourceCountIs('AWS::FIS::ExperimentTemplate', 1);
    const experiment = Object.values(resourcesOfType(raw, 'AWS::FIS::ExperimentTemplate'))[0].Properties;
    const action = Object.values(experiment.Actions as Record<string, Json>)[0];
    expect(action.ActionId).toBe(BLACKHOLE_ACTION_ID);
    expect(action.Parameters.scope).toBe('all');
    expect(action.Parameters.duration).toMatch(/^PT\d+M$/);
    const target = experiment.Targets[action.Targets.Subnets];
    expect(target).toMatchObject({ ResourceType: 'aws:ec2:subnet', SelectionMode: 'ALL' });
    const subnetIds = Object.keys(resourcesOfType(raw, 'AWS::EC2::Subnet')).sort();
    const targeted = (target.ResourceArns as Json[])
      .map((arn) => arn['Fn::Join'][1].find((p: Json) => p.Ref)?.Ref)
      .sort();
    expect(targeted).toEqual(subnetIds);
    const backupAlarm = Object.entries(resourcesOfType(raw, 'AWS::CloudWatch::Alarm')).find(([, a]) =>
      (a.Properties.Dimensions ?? []).some((d: Json) => d.Value === CANARY_STEPS.joinBackup),
    )![0];
    expect(experiment.StopConditions).toEqual([
      { Source: 'aws:cloudwatch:alarm', Value: { 'Fn::GetAtt': [backupAlarm, 'Arn'] } },
    ]);
    template.hasOutput('FisBlackholeTemplateId', {});
  });
});

/** Logical id of the one role assumed by `service` (and, when given, whose id contains `idPart`). */
function roleIdOf(service: string, idPart = ''): string {
  const ids = Object.entries(resourcesOfType(raw, 'AWS::IAM::Role'))
    .filter(([id, role]) =>
      (role.Properties.AssumeRolePolicyDocument.Statement as Json[]).some(
        (st) => st.Principal?.Service === service && id.includes(idPart),
      ),
    )
    .map(([id]) => id);
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

function policyStatementsOf(roleId: string): Json[] {
  return Object.values(resourcesOfType(raw, 'AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles ?? []).some((r: Json) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
}

/** The resources (as template values) a role's policies allow `action` on. */
function grantedResources(roleId: string, action: string): Json[] {
  return policyStatementsOf(roleId)
    .filter((s) => s.Effect === 'Allow' && [s.Action].flat().includes(action))
    .flatMap((s) => [s.Resource].flat());
}

function resolvedSecretArn(name: string): string {
  const lookup = Object.entries(raw.Resources as Record<string, Json>).find(
    ([, r]) => String(r.Type).startsWith('Custom::') && r.Properties.Create.includes(`rtcdemo/${name}`),
  )!;
  return deployTimeValue(raw, { 'Fn::GetAtt': [lookup[0], 'ARN'] }, TEST_ACCOUNT);
}

/** The media fleet's Auto Scaling group (the TURN relay has one of its own). */
function mediaGroup(): [string, Json] {
  const found = Object.entries(resourcesOfType(raw, 'AWS::AutoScaling::AutoScalingGroup')).filter(([id]) =>
    id.startsWith('MediaFleet'),
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The listeners of the LB service's ALB (the TURN relay's NLB has its own). */
function albListeners(): Json[] {
  return Object.values(resourcesOfType(raw, 'AWS::ElasticLoadBalancingV2::Listener')).filter((l) =>
    String(l.Properties.LoadBalancerArn.Ref).startsWith('LbService'),
  );
}

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

  it("launches no host before its subnets' default routes exist (the boot reaches AWS and Docker through them)", () => {
    // CloudFormation creates resources in parallel unless one depends on another. A host's boot installs
    // Docker, reads its secret, pulls its image and signals CloudFormation over the internet: through the
    // internet gateway (media, public subnets) or a NAT gateway (TURN relay, private subnets), so its group
    // must wait for the subnet's route table association and its 0.0.0.0/0 route.
    const groups = Object.entries(resourcesOfType(raw, 'AWS::AutoScaling::AutoScalingGroup'));
    expect(groups).toHaveLength(2);
    const associations = Object.entries(resourcesOfType(raw, 'AWS::EC2::SubnetRouteTableAssociation'));
    const routes = Object.entries(resourcesOfType(raw, 'AWS::EC2::Route'));
    for (const [groupId, group] of groups) {
      const dependsOn = [group.DependsOn ?? []].flat();
      for (const subnet of group.Properties.VPCZoneIdentifier as Json[]) {
        const [associationId, association] = associations.find(
          ([, a]) => a.Properties.SubnetId.Ref === subnet.Ref,
        )!;
        const [routeId, route] = routes.find(
          ([, r]) =>
            r.Properties.RouteTableId.Ref === association.Properties.RouteTableId.Ref &&
            r.Properties.DestinationCidrBlock === '0.0.0.0/0',
        )!;
        expect(route.Properties.GatewayId ?? route.Properties.NatGatewayId).toBeDefined();
        expect({ groupId, subnet: subnet.Ref, dependsOn }).toEqual({
          groupId,
          subnet: subnet.Ref,
          dependsOn: expect.arrayContaining([associationId, routeId]),
        });
      }
    }
  });

  it('scopes every DynamoDB permission to its own replica and its one GSI', () => {
    const statements = Object.values(resourcesOfType(raw, 'AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Json[],
    );
    const dynamo = statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('dynamodb:')));
    // Reads and writes of the LB task role and the media instance role, and the termination policy's read.
    expect(dynamo).toHaveLength(5);
    for (const s of dynamo) {
      for (const resource of [s.Resource].flat()) {
        expect([OWN_TABLE_ARN, `${OWN_TABLE_ARN}/index/${TABLE_KEYS.gsiName}`]).toContain(resource);
      }
      expect([s.Action].flat()).not.toContain('dynamodb:*');
    }
  });

  it('lets each role write only the item kinds it owns (dynamodb:LeadingKeys, IAM condition semantics)', () => {
    const writers = {
      lb: roleIdOf('ecs-tasks.amazonaws.com', 'TaskRole'),
      media: roleIdOf('ec2.amazonaws.com', 'MediaFleet'),
    };
    // A write is allowed when some statement of the role allows the action and its condition holds.
    const mayWrite = (roleId: string, partitionKeys: string[] | undefined) =>
      policyStatementsOf(roleId)
        .filter((s) => s.Effect === 'Allow' && [s.Action].flat().includes('dynamodb:PutItem'))
        .some((s) => {
          const like = s.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
          const nullCheck = s.Condition?.Null?.['dynamodb:LeadingKeys'];
          if (!like) return true;
          return (
            forAllValuesStringLike(like, partitionKeys) && (nullCheck !== 'false' || nullFalse(partitionKeys))
          );
        });
    expect(mayWrite(writers.lb, ['room#abc'])).toBe(true);
    expect(mayWrite(writers.lb, ['region#eu-west-1'])).toBe(true);
    expect(mayWrite(writers.lb, ['server#i-0abc'])).toBe(false);
    expect(mayWrite(writers.media, ['server#i-0abc'])).toBe(true);
    expect(mayWrite(writers.media, ['room#abc'])).toBe(true);
    expect(mayWrite(writers.media, ['region#eu-west-1'])).toBe(false);
    expect(mayWrite(writers.media, ['room#abc', 'region#eu-west-1'])).toBe(false);
    // ForAllValues alone is true for a request without keys; the Null check closes that.
    expect(mayWrite(writers.media, undefined)).toBe(false);
    for (const roleId of Object.values(writers)) {
      const writes = policyStatementsOf(roleId).filter((s) =>
        [s.Action].flat().some((a: string) => /^dynamodb:(Put|Update|Delete)Item$/.test(a)),
      );
      expect(writes).toHaveLength(1);
      expect([writes[0].Action].flat().sort()).toEqual([
        'dynamodb:DeleteItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ]);
    }
  });

  it("reads only its own region's replicas of the key sets, and media hosts only the media keys", () => {
    const mediaKeys = resolvedSecretArn('media-token-keys');
    const joinKeys = resolvedSecretArn('join-token-keys');
    // The TURN relay hosts read the TURN secret and nothing else (test/lib/turn-relay.test.ts).
    const turnSecret = resolvedSecretArn('turn-secret');
    const statements = Object.values(resourcesOfType(raw, 'AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Json[],
    );
    const secretReads = statements.filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secretReads.length).toBeGreaterThanOrEqual(4); // LB execution role, media hosts, canary, TURN
    for (const s of secretReads) {
      for (const resource of [s.Resource].flat()) {
        expect([mediaKeys, joinKeys, turnSecret]).toContain(deployTimeValue(raw, resource, TEST_ACCOUNT));
      }
    }
    const turn = grantedResources(
      roleIdOf('ec2.amazonaws.com', 'TurnRelay'),
      'secretsmanager:GetSecretValue',
    );
    expect(turn.map((r) => deployTimeValue(raw, r, TEST_ACCOUNT))).toEqual([turnSecret]);
    const media = grantedResources(
      roleIdOf('ec2.amazonaws.com', 'MediaFleet'),
      'secretsmanager:GetSecretValue',
    ).map((r) => deployTimeValue(raw, r, TEST_ACCOUNT));
    expect(media).toEqual([mediaKeys]);
  });

  it('lets a media host complete lifecycle actions and set its health only on its own group', () => {
    const [asgId] = mediaGroup();
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth'],
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
    template.hasOutput('BackupRegionApiUrl', {
      Value: 'https://eu-west-1.api-backup.rtc-fallback.example.com',
    });
    template.hasOutput('Region', { Value: REGION });
    for (const output of Object.values(raw.Outputs as Record<string, Json>))
      expect(output.Export).toBeUndefined();
  });
});
