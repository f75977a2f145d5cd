/**
 * What the media fleet and the TURN relay fleet share: hosts on Amazon Linux 2023 that run one container
 * image from this region's CDK asset repository, log to their own log group, are reached by Session
 * Manager (no SSH), read instance metadata over IMDSv2 only, and mark themselves unhealthy through their
 * own Auto Scaling group. Each fleet adds its security groups, grants, group and boot script.
 */

import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface HostImageProps {
  /** EC2 instance type name; an ARM type gets an ARM image and AMI. */
  readonly instanceType: string;
  /** The image's build context and Dockerfile, with any options narrowing the context. */
  readonly image: Omit<ecrAssets.DockerImageAssetProps, 'platform'>;
  /** The instance role's description (what the host may do). */
  readonly roleDescription: string;
}

/** The pieces every host of a fleet is built from (construct ids Image, Logs and InstanceRole). */
export interface HostParts {
  readonly instanceType: ec2.InstanceType;
  readonly arm: boolean;
  readonly image: ecrAssets.DockerImageAsset;
  readonly logGroup: logs.LogGroup;
  /** May pull the image and write the logs; Session Manager through AmazonSSMManagedInstanceCore. */
  readonly role: iam.Role;
}

export function hostParts(scope: Construct, props: HostImageProps): HostParts {
  const instanceType = new ec2.InstanceType(props.instanceType);
  const arm = instanceType.architecture === ec2.InstanceArchitecture.ARM_64;
  const image = new ecrAssets.DockerImageAsset(scope, 'Image', {
    ...props.image,
    platform: arm ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
  });
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    retention: logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, 'InstanceRole', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: props.roleDescription,
    // Session Manager instead of SSH: no key pair, no port 22; sessions are IAM-authorized and logged
    // in CloudTrail.
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  image.repository.grantPull(role);
  logGroup.grantWrite(role);
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken supports no resource-level permissions; the image pull itself is scoped ' +
        "to this region's CDK asset repository.",
    },
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason:
        'AmazonSSMManagedInstanceCore is the documented policy for Session Manager access, which replaces ' +
        'SSH on these hosts; AWS keeps it in step with what the SSM agent needs.',
    },
  );
  return { instanceType, arm, image, logGroup, role };
}

export interface HostLaunchTemplateProps {
  readonly parts: HostParts;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly userData: ec2.UserData;
  readonly rootVolumeGib: number;
  /** Hosts in public subnets with their own public address (media), or private behind NAT (relays). */
  readonly publicAddress: boolean;
}

/** The fleet's launch template (construct id LaunchTemplate): encrypted gp3 root, IMDSv2 only. */
export function hostLaunchTemplate(scope: Construct, p: HostLaunchTemplateProps): ec2.LaunchTemplate {
  return new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    instanceType: p.parts.instanceType,
    machineImage: ec2.MachineImage.latestAmazonLinux2023({
      cpuType: p.parts.arm ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
    }),
    role: p.parts.role,
    securityGroup: p.securityGroup,
    userData: p.userData,
    requireImdsv2: true,
    // The container shares the host network, so one hop reaches the metadata service; anything
    // forwarded further (a bridged container) does not.
    httpPutResponseHopLimit: 1,
    associatePublicIpAddress: p.publicAddress,
    detailedMonitoring: true,
    blockDevices: [
      {
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs(p.rootVolumeGib, {
          encrypted: true,
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          deleteOnTermination: true,
        }),
      },
    ],
  });
}

export interface OwnGroupPolicyProps {
  readonly role: iam.IRole;
  readonly group: autoscaling.AutoScalingGroup;
  /** Actions on the fleet's own group, e.g. autoscaling:SetInstanceHealth. */
  readonly actions: readonly string[];
  /** Further statements of the same policy. */
  readonly statements?: readonly iam.PolicyStatement[];
}

/**
 * A policy of its own for what a host does to its own group: the instance profile's default policy must
 * not depend on the group, because the group depends on the launch template, which depends on that
 * default policy. The group's ARN embeds an id CloudFormation never returns, so the name is pinned and
 * the id wildcarded (with the matching cdk-nag note).
 */
export function ownGroupPolicy(scope: Construct, id: string, p: OwnGroupPolicyProps): iam.Policy {
  const stack = Stack.of(scope);
  const groupArn = stack.formatArn({
    service: 'autoscaling',
    resource: 'autoScalingGroup',
    resourceName: `*:autoScalingGroupName/${p.group.autoScalingGroupName}`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const policy = new iam.Policy(scope, id, {
    roles: [p.role],
    statements: [
      new iam.PolicyStatement({ actions: [...p.actions], resources: [groupArn] }),
      ...(p.statements ?? []),
    ],
  });
  const groupLogicalId = stack.resolve(
    (p.group.node.defaultChild as autoscaling.CfnAutoScalingGroup).logicalId,
  );
  const actions = p.actions.map((a) => a.replace(/^autoscaling:/, ''));
  Validations.of(policy).acknowledge({
    // cdk-nag names the finding after the rendered ARN, with the group's Ref shown as <LogicalId>.
    id: `AwsSolutions-IAM5[Resource::arn:${stack.partition}:autoscaling:${stack.region}:${stack.account}:autoScalingGroup:*:autoScalingGroupName/<${groupLogicalId}>]`,
    reason:
      'An Auto Scaling group ARN contains a generated id that CloudFormation does not return; the name ' +
      `pins the policy to the fleet's own group, and only ${actions.join(' and ')} ` +
      `${actions.length > 1 ? 'are' : 'is'} allowed on it.`,
  });
  return policy;
}
