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
import { LbService } from '../../lib/lb-service';
import { MediaFleet } from '../../lib/media-fleet';
import { RegionStack } from '../../lib/region-stack';
import { RegionalDns } from '../../lib/regional-dns';
import { TableStack } from '../../lib/table-stack';

function fixture() {
  const stack = new Stack(new App(), 'Fixture', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, restrictDefaultSecurityGroup: false });
  return {
    stack,
    vpc,
    table: dynamodb.TableV2.fromTableName(stack, 'Table', 'rooms'),
    secret: secretsmanager.Secret.fromSecretNameV2(stack, 'Secret', 'app/secret'),
    zone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', {
      hostedZoneId: 'Z1',
      zoneName: 'example.com',
    }),
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
          joinTokenSecret: f.secret,
          signalingPort: 7000,
          rtcPortMin: 40000,
          rtcPortMax: 40100,
          drainTimeout: Duration.hours(2),
        }),
    ).toThrow(/exceeds the 2 hours lifecycle hook limit; use a drainTimeout up to 118 minutes/);
  });

  it('LbService rejects an autoscaling ceiling below the desired count', () => {
    const f = fixture();
    expect(
      () =>
        new LbService(f.stack, 'Lb', {
          vpc: f.vpc,
          certificate: acm.Certificate.fromCertificateArn(
            f.stack,
            'Cert',
            'arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000',
          ),
          image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/node:22'),
          table: f.table,
          joinTokenSecret: f.secret,
          publicApiUrl: 'https://eu-west-1.api.example.com',
          containerPort: 8080,
          desiredCount: 4,
          maxCount: 2,
        }),
    ).toThrow(/maxCount \(2\) is below desiredCount \(4\)/);
  });

  it('TableStack must live in one of the regions it replicates to', () => {
    expect(
      () =>
        new TableStack(new App(), 'Table', {
          env: { account: '123456789012', region: 'us-west-2' },
          tableName: 'rooms',
          secretName: 'app/secret',
          regions: ['eu-west-1', 'ap-southeast-1'],
        }),
    ).toThrow(/region "us-west-2" is not among the served regions \(eu-west-1, ap-southeast-1\)/);
  });

  it('RegionStack needs a concrete region for its latency record', () => {
    expect(
      () =>
        new RegionStack(new App(), 'Region', {
          vpcCidr: '10.0.0.0/16',
          tableName: 'rooms',
          secretName: 'app/secret',
          dns: {
            domain: 'example.com',
            hostedZoneId: 'Z1',
            backupDomain: 'example.net',
            backupHostedZoneId: 'Z2',
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
          sourceDirectory: `${__dirname}/../..`,
        }),
    ).toThrow(/has no concrete region; pass env.region/);
  });
});
