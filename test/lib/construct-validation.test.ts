/**
 * Constructs validate their own props (the config schema is not their only caller) and say what to change.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { JoinCanary } from '../../lib/join-canary';
import { LbService } from '../../lib/lb-service';
import { MediaFleet } from '../../lib/media-fleet';
import { MonitoringStack } from '../../lib/monitoring-stack';
import { RegionBlackhole } from '../../lib/region-blackhole';
import { type BackupDnsSettings, RegionStack, type RegionStackProps } from '../../lib/region-stack';
import { RegionalDns } from '../../lib/regional-dns';
import { RegionalSecret } from '../../lib/regional-secret';
import { grantRegionalTableAccess } from '../../lib/table-access';
import { TableStack } from '../../lib/table-stack';

function fixture() {
  const stack = new Stack(new App(), 'Fixture', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, restrictDefaultSecurityGroup: false });
  return {
    stack,
    vpc,
    table: dynamodb.TableV2.fromTableName(stack, 'Table', 'rooms'),
    /** Imported by name: ECS cannot use it, grants cannot name it exactly. */
    secretByName: secretsmanager.Secret.fromSecretNameV2(stack, 'Secret', 'app/secret'),
    secret: secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'FullSecret',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/secret-Ab3dE9',
    ),
    zone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', {
      hostedZoneId: 'Z1',
      zoneName: 'example.com',
    }),
  };
}

function minimalRegionStackProps(backup: BackupDnsSettings): RegionStackProps {
  return {
    appName: 'app',
    vpcCidr: '10.0.0.0/16',
    tableName: 'rooms',
    joinTokenKeysSecretName: 'app/join-token-keys',
    mediaTokenKeysSecretName: 'app/media-token-keys',
    turnSecretName: 'app/turn-secret',
    monitoring: { alarmEmails: [] },
    dns: {
      domain: 'example.com',
      hostedZoneId: 'Z1',
      backupDomain: 'example.net',
      backup,
      apiDomainName: 'api.example.com',
      regionApiDomainName: 'x.api.example.com',
      backupApiDomainName: 'api-backup.example.net',
    },
    healthCheck: { requestIntervalSeconds: 10, failureThreshold: 3 },
    lb: { containerPort: 8080, desiredCount: 1, corsOrigins: [] },
    media: {
      instanceType: 'c6i.large',
      minCapacity: 1,
      maxCapacity: 1,
      signalingPort: 7000,
      rtcPortMin: 40000,
      rtcPortMax: 40100,
    },
    turn: {
      instanceType: 'c6i.large',
      minCapacity: 1,
      maxCapacity: 1,
      relayPortMin: 49152,
      relayPortMax: 65535,
      credentialTtlSeconds: 3600,
    },
    sourceDirectory: `${__dirname}/../..`,
  };
}

describe('construct validation', () => {
  it('RegionalDns rejects an interval Route 53 does not offer and a threshold out of range', () => {
    const f = fixture();
    const loadBalancer = new elbv2.ApplicationLoadBalancer(f.stack, 'Alb', { vpc: f.vpc });
    const props = {
      region: 'eu-west-1',
      loadBalancer,
      primaryZone: f.zone,
      backupZone: f.zone,
      apiDomainName: 'api.example.com',
      regionApiDomainName: 'eu-west-1.api.example.com',
      backupApiDomainName: 'api-backup.example.com',
      backupRegionApiDomainName: 'eu-west-1.api-backup.example.com',
      requestIntervalSeconds: 10,
      failureThreshold: 3,
    };
    expect(() => new RegionalDns(f.stack, 'A', { ...props, requestIntervalSeconds: 15 })).toThrow(
      /requestIntervalSeconds is 15; use 10 or 30/,
    );
    expect(() => new RegionalDns(f.stack, 'B', { ...props, failureThreshold: 0 })).toThrow(
      /failureThreshold is 0; use an integer from 1 to 10/,
    );
  });

  it('MediaFleet rejects a drain longer than a lifecycle hook can wait', () => {
    const f = fixture();
    expect(
      () =>
        new MediaFleet(f.stack, 'Fleet', {
          vpc: f.vpc,
          image: { directory: `${__dirname}/../..`, file: 'runtime/media/Dockerfile' },
          instanceType: 'c6i.large',
          minCapacity: 1,
          maxCapacity: 2,
          table: f.table,
          mediaTokenKeys: f.secret,
          signalingPort: 7000,
          rtcPortMin: 40000,
          rtcPortMax: 40100,
          drainTimeout: Duration.hours(2),
        }),
    ).toThrow(/exceeds the 2 hours lifecycle hook limit; use a drainTimeout up to 118 minutes/);
  });

  function lbProps(f: ReturnType<typeof fixture>) {
    return {
      vpc: f.vpc,
      certificate: acm.Certificate.fromCertificateArn(
        f.stack,
        'Cert',
        'arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000',
      ),
      image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/node:22'),
      table: f.table,
      joinTokenKeys: f.secret,
      mediaTokenKeys: f.secret,
      turnSecret: f.secret,
      turn: { hostPrefix: 'turn.', port: 3478, tlsPort: 443, ttlSeconds: 3600 },
      publicApiUrl: 'https://eu-west-1.api.example.com',
      backupApiUrl: 'https://eu-west-1.api-backup.example.net',
      backupDomain: 'example.net',
      containerPort: 8080,
      desiredCount: 4,
    };
  }

  it('LbService rejects an autoscaling ceiling below the desired count', () => {
    const f = fixture();
    expect(() => new LbService(f.stack, 'Lb', { ...lbProps(f), maxCount: 2 })).toThrow(
      /maxCount \(2\) is below desiredCount \(4\)/,
    );
  });

  it('LbService and MediaFleet refuse a secret without its full ARN (ECS would read it as an SSM name)', () => {
    const f = fixture();
    expect(() => new LbService(f.stack, 'Lb', { ...lbProps(f), joinTokenKeys: f.secretByName })).toThrow(
      /joinTokenKeys "app\/secret" has no full ARN; ECS reads anything else as an SSM parameter/,
    );
    const g = fixture();
    expect(() => new LbService(g.stack, 'Lb', { ...lbProps(g), turnSecret: g.secretByName })).toThrow(
      /turnSecret "app\/secret" has no full ARN/,
    );
    expect(
      () =>
        new MediaFleet(f.stack, 'Fleet', {
          vpc: f.vpc,
          image: { directory: `${__dirname}/../..`, file: 'runtime/media/Dockerfile' },
          instanceType: 'c6i.large',
          minCapacity: 1,
          maxCapacity: 2,
          table: f.table,
          mediaTokenKeys: f.secretByName,
          signalingPort: 7000,
          rtcPortMin: 40000,
          rtcPortMax: 40100,
        }),
    ).toThrow(/mediaTokenKeys "app\/secret" has no full ARN/);
  });

  it('RegionalSecret rejects a name Secrets Manager would not accept', () => {
    const f = fixture();
    expect(() => new RegionalSecret(f.stack, 'S', { secretName: 'bad name' })).toThrow(
      /"bad name" is not a Secrets Manager secret name/,
    );
  });

  it('grantRegionalTableAccess needs the item kinds a role writes', () => {
    const f = fixture();
    const role = new iam.Role(f.stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    expect(() => grantRegionalTableAccess(role, f.table, { writes: [] })).toThrow(/at least one item kind/);
  });

  it('RegionBlackhole accepts only what FIS accepts and needs a stop condition', () => {
    const f = fixture();
    const alarm = new cloudwatch.Alarm(f.stack, 'Alarm', {
      metric: new cloudwatch.Metric({ namespace: 'N', metricName: 'M' }),
      threshold: 1,
      evaluationPeriods: 1,
    });
    expect(
      () =>
        new RegionBlackhole(f.stack, 'A', {
          vpc: f.vpc,
          name: 'x',
          stopConditions: [alarm],
          duration: Duration.hours(13),
        }),
    ).toThrow(/outside what FIS accepts; use 1 minute to 12 hours/);
    expect(() => new RegionBlackhole(f.stack, 'B', { vpc: f.vpc, name: 'x', stopConditions: [] })).toThrow(
      /needs at least one stop condition alarm/,
    );
  });

  it('JoinCanary needs a valid canary name and the key set by full ARN', () => {
    const f = fixture();
    const props = {
      canaryName: 'app-join',
      regionApiUrl: 'https://eu-west-1.api.example.com',
      backupApiUrl: 'https://api-backup.example.net',
      joinTokenKeys: f.secret,
      roomId: 'canary-eu-west-1',
    };
    expect(() => new JoinCanary(f.stack, 'A', { ...props, canaryName: 'App Join' })).toThrow(
      /"App Join" is not a canary name/,
    );
    expect(() => new JoinCanary(f.stack, 'B', { ...props, joinTokenKeys: f.secretByName })).toThrow(
      /needs its full ARN/,
    );
  });

  it('MonitoringStack lives in us-east-1, where Route 53 health-check metrics are', () => {
    expect(
      () =>
        new MonitoringStack(new App(), 'M', {
          env: { account: '123456789012', region: 'eu-west-1' },
          appName: 'app',
          healthCheckIds: { 'eu-west-1': '0b8c2f5e-1f0a-4a59-9d3c-2a7c1a9e5b11' },
          alarmEmails: [],
        }),
    ).toThrow(/Route 53 health-check metrics exist only in us-east-1/);
  });

  it('TableStack must live in one of the regions it replicates to, and keep the key sets and TURN secret apart', () => {
    const props = {
      tableName: 'rooms',
      joinTokenKeysSecretName: 'app/join-token-keys',
      mediaTokenKeysSecretName: 'app/media-token-keys',
      turnSecretName: 'app/turn-secret',
      regions: ['eu-west-1', 'ap-southeast-1'],
    };
    expect(
      () =>
        new TableStack(new App(), 'Table', {
          ...props,
          env: { account: '123456789012', region: 'us-west-2' },
        }),
    ).toThrow(/region "us-west-2" is not among the served regions \(eu-west-1, ap-southeast-1\)/);
    expect(
      () =>
        new TableStack(new App(), 'Table', {
          ...props,
          mediaTokenKeysSecretName: props.joinTokenKeysSecretName,
          env: { account: '123456789012', region: 'eu-west-1' },
        }),
    ).toThrow(/must be two secrets so that a media host never holds the join keys/);
    expect(
      () =>
        new TableStack(new App(), 'Table', {
          ...props,
          turnSecretName: props.mediaTokenKeysSecretName,
          env: { account: '123456789012', region: 'eu-west-1' },
        }),
    ).toThrow(/turnSecretName "app\/media-token-keys" is also a token key set's name/);
  });

  it('RegionStack needs a concrete region for its latency record', () => {
    expect(
      () =>
        new RegionStack(
          new App(),
          'Region',
          minimalRegionStackProps({ provider: 'route53', hostedZoneId: 'Z2' }),
        ),
    ).toThrow(/has no concrete region; pass env.region/);
  });

  it('RegionStack refuses an imported backup certificate of another region (ACM certificates are regional)', () => {
    const cert = (region: string) =>
      `arn:aws:acm:${region}:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d`;
    const env = { account: '123456789012', region: 'eu-west-1' };
    expect(
      () =>
        new RegionStack(new App(), 'Api', {
          ...minimalRegionStackProps({
            provider: 'external',
            certificateArn: cert('us-east-1'),
            turnCertificateArn: cert('eu-west-1'),
          }),
          env,
        }),
    ).toThrow(
      /backupDns\.certificateArns\.eu-west-1 "arn:aws:acm:us-east-1:.*" is not an ACM certificate of eu-west-1; the load balancers of eu-west-1 can only use a certificate imported into ACM in eu-west-1/,
    );
    expect(
      () =>
        new RegionStack(new App(), 'Turn', {
          ...minimalRegionStackProps({
            provider: 'external',
            certificateArn: cert('eu-west-1'),
            turnCertificateArn: cert('ap-southeast-1'),
          }),
          env,
        }),
    ).toThrow(
      /backupDns\.turnCertificateArns\.eu-west-1 "arn:aws:acm:ap-southeast-1:.*" is not an ACM certificate of eu-west-1/,
    );
  });
});
