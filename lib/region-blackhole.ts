/**
 * A chaos drill that takes this region off the network: an AWS FIS experiment template that denies all
 * traffic into and out of every subnet of the region's VPC (`aws:network:disrupt-connectivity`, scope
 * `all`), which is what a region lost to its clients looks like: the ALB, the LB tasks and the media
 * hosts stop answering at once, while everything outside the VPC (the table's other replicas, Route 53,
 * the canary) keeps running.
 *
 * FIS swaps each subnet's network ACL for one that denies everything and puts the original back when
 * the action ends, when the experiment is stopped, or when the stop condition fires: the api-backup
 * join alarm, because during the drill the second way in must keep working (if it does not, the drill
 * is hurting clients it should not). `npm run chaos -- --target aws --mode blackhole` starts and stops it.
 */
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as fis from 'aws-cdk-lib/aws-fis';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** FIS accepts action durations from one minute to twelve hours. */
const MIN_DURATION = Duration.minutes(1);
const MAX_DURATION = Duration.hours(12);
/** The FIS action the drill uses; FIS restores the subnets' network ACLs when it ends. */
export const BLACKHOLE_ACTION_ID = 'aws:network:disrupt-connectivity';

export interface RegionBlackholeProps {
  readonly vpc: ec2.IVpc;
  /** Alarms that stop the experiment when they fire. */
  readonly stopConditions: readonly cloudwatch.IAlarm[];
  /** Shown in the FIS console and as the template's Name tag. */
  readonly name: string;
  /**
   * How long the subnets stay cut off unless the experiment is stopped sooner.
   * @default Duration.minutes(10)
   */
  readonly duration?: Duration;
}

export class RegionBlackhole extends Construct {
  readonly experimentTemplate: fis.CfnExperimentTemplate;

  constructor(scope: Construct, id: string, props: RegionBlackholeProps) {
    super(scope, id);
    const duration = props.duration ?? Duration.minutes(10);
    if (duration.toSeconds() < MIN_DURATION.toSeconds() || duration.toSeconds() > MAX_DURATION.toSeconds()) {
      throw new Error(
        `RegionBlackhole duration ${duration.toHumanString()} is outside what FIS accepts; use 1 minute to 12 hours`,
      );
    }
    if (props.stopConditions.length === 0) {
      throw new Error(
        'RegionBlackhole needs at least one stop condition alarm; a drill must be able to stop itself',
      );
    }
    const stack = Stack.of(this);
    const subnets = [...props.vpc.publicSubnets, ...props.vpc.privateSubnets, ...props.vpc.isolatedSubnets];

    const role = new iam.Role(this, 'Role', {
      description: `FIS: blackhole the subnets of ${props.name}`,
      assumedBy: new iam.ServicePrincipal('fis.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSFaultInjectionSimulatorNetworkAccess'),
      ],
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSFaultInjectionSimulatorNetworkAccess]',
      reason:
        'The FIS user guide names this AWS managed policy for aws:network:disrupt-connectivity; it can only ' +
        'create, swap and delete network ACLs tagged managedByFIS, and AWS keeps it in step with the action.',
    });

    this.experimentTemplate = new fis.CfnExperimentTemplate(this, 'Resource', {
      description: `Blackhole ${props.name}: deny all traffic into and out of its subnets for ${duration.toHumanString()}`,
      roleArn: role.roleArn,
      targets: {
        subnets: {
          resourceType: 'aws:ec2:subnet',
          resourceArns: subnets.map((s) =>
            stack.formatArn({ service: 'ec2', resource: 'subnet', resourceName: s.subnetId }),
          ),
          selectionMode: 'ALL',
        },
      },
      actions: {
        blackhole: {
          actionId: BLACKHOLE_ACTION_ID,
          description: 'Deny all traffic into and out of every subnet of the region',
          parameters: { duration: duration.toIsoString(), scope: 'all' },
          targets: { Subnets: 'subnets' },
        },
      },
      stopConditions: props.stopConditions.map((alarm) => ({
        source: 'aws:cloudwatch:alarm',
        value: alarm.alarmArn,
      })),
      experimentOptions: { accountTargeting: 'single-account', emptyTargetResolutionMode: 'fail' },
      tags: { Name: props.name },
    });
  }
}
