/**
 * The region's mediasoup fleet: an Auto Scaling group of EC2 hosts in public subnets, each with a public
 * IPv4 that mediasoup announces in ICE. Media (UDP, and TCP as ICE fallback) flows straight between
 * clients and hosts over a fixed port range; signaling reaches a host only through the LB service.
 *
 * A host that cannot serve fails loudly: its boot signals CloudFormation (creation policy on create, a
 * rolling update that waits for each new host's signal on update), and a host whose media server stays
 * down marks itself unhealthy so the group replaces it (media-host-script.ts).
 *
 * Scale-in must not cut calls. The group's first termination policy is a function that picks the hosts
 * with the fewest rooms (functions/termination-policy.ts); a termination lifecycle hook then holds the
 * leaving host while it drains, and the hook's timeout is the hard upper bound on that drain. Instance
 * scale-in protection was the other candidate and is not used: a busy fleet would never scale in, and
 * protected hosts block instance refreshes.
 */
import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { hostLaunchTemplate, hostParts, ownGroupPolicy } from './host-fleet';
import { imageAssetContext } from './image-context';
import { inlineFunctionSource } from './inline-code';
import { mediaHostScript } from './media-host-script';
import { grantRegionalTableAccess } from './table-access';
import type { LogLevel } from '../runtime/protocol/environment';

/** Name of the termination hook; the host's drain watcher completes it by this name. */
export const MEDIA_DRAIN_HOOK_NAME = 'drain-media-sessions';
/** Auto Scaling caps a lifecycle hook's heartbeat timeout at two hours. */
const MAX_HOOK_TIMEOUT = Duration.hours(2);
/** Time the hook allows beyond the server's drain: docker stop grace plus the API call. */
const HOOK_MARGIN = Duration.minutes(2);
const ROOT_VOLUME_GIB = 30;
/**
 * How long a new host may take from launch to a healthy media server: Docker install, image pull (a few
 * hundred MB from this region's ECR), worker start. Past it, CloudFormation counts the host as failed.
 */
export const MEDIA_BOOT_TIMEOUT = Duration.minutes(15);
/** Auto Scaling gives a custom termination policy two seconds (Auto Scaling user guide). */
const TERMINATION_POLICY_TIMEOUT = Duration.seconds(2);

export interface MediaImageSource {
  /**
   * Directory the Dockerfile and its COPY sources are relative to (the repository root). The image's
   * build context, and its asset hash, hold only what the Dockerfile COPYs (lib/image-context.ts).
   */
  readonly directory: string;
  /** Dockerfile path relative to `directory`. */
  readonly file: string;
}

export interface MediaFleetProps {
  readonly vpc: ec2.IVpc;
  readonly image: MediaImageSource;
  /** EC2 instance type; its architecture selects the AMI and the image platform. */
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** This region's replica of the global table. */
  readonly table: dynamodb.ITableV2;
  /**
   * This region's replica of the media-token key set, imported by its full ARN. The only secret a host
   * reads: media hosts never hold the join keys.
   */
  readonly mediaTokenKeys: secretsmanager.ISecret;
  /** TCP port of the signaling WebSocket the LB relays to. */
  readonly signalingPort: number;
  readonly rtcPortMin: number;
  readonly rtcPortMax: number;
  /**
   * How long a terminating server may keep serving its rooms before it exits anyway.
   * @default Duration.minutes(30)
   */
  readonly drainTimeout?: Duration;
  /**
   * Average CPU the fleet scales to hold.
   * @default 50
   */
  readonly cpuTargetPercent?: number;
  /**
   * Level of the media server's logger.
   * @default 'info'
   */
  readonly logLevel?: LogLevel;
}

export class MediaFleet extends Construct {
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The group's configured bounds, for the region's alarms. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** Security group membership of the hosts: grant the signaling port to the LB service through it. */
  readonly connections: ec2.Connections;
  readonly signalingPort: number;

  constructor(scope: Construct, id: string, props: MediaFleetProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const drainTimeout = props.drainTimeout ?? Duration.minutes(30);
    const hookTimeout = drainTimeout.plus(HOOK_MARGIN);
    if (hookTimeout.toSeconds() > MAX_HOOK_TIMEOUT.toSeconds()) {
      throw new Error(
        `MediaFleet drainTimeout ${drainTimeout.toHumanString()} plus ${HOOK_MARGIN.toHumanString()} exceeds ` +
          `the ${MAX_HOOK_TIMEOUT.toHumanString()} lifecycle hook limit; use a drainTimeout up to 118 minutes`,
      );
    }
    if (props.rtcPortMin > props.rtcPortMax) {
      throw new Error(`MediaFleet rtcPortMin ${props.rtcPortMin} exceeds rtcPortMax ${props.rtcPortMax}`);
    }
    if (!props.mediaTokenKeys.secretFullArn) {
      throw new Error(
        `MediaFleet mediaTokenKeys "${props.mediaTokenKeys.secretName}" has no full ARN; import this ` +
          "region's replica with Secret.fromSecretCompleteArn (RegionalSecret) so the grant names it exactly",
      );
    }
    this.signalingPort = props.signalingPort;
    this.minCapacity = props.minCapacity;
    this.maxCapacity = props.maxCapacity;

    const parts = hostParts(this, {
      instanceType: props.instanceType,
      image: {
        directory: props.image.directory,
        file: props.image.file,
        ...imageAssetContext(props.image.directory, props.image.file),
      },
      roleDescription: 'Media host: own table replica, media-token keys, own image, own lifecycle hook',
    });
    const { image, logGroup, role } = parts;

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Media hosts: RTC ports open to clients, signaling only from the LB service',
      // RTP goes to whatever address and port each client's NAT presents.
      allowAllOutbound: true,
    });
    const rtcPorts = `${props.rtcPortMin}-${props.rtcPortMax}`;
    securityGroup.addIngressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.udpRange(props.rtcPortMin, props.rtcPortMax),
      `WebRTC media (UDP ${rtcPorts})`,
    );
    securityGroup.addIngressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcpRange(props.rtcPortMin, props.rtcPortMax),
      `WebRTC media over TCP for clients behind UDP-blocking firewalls (${rtcPorts})`,
    );
    Validations.of(securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'WebRTC media flows directly between clients anywhere on the internet and these hosts, so the RTC ' +
        `port range ${rtcPorts} (UDP and TCP) must be open to 0.0.0.0/0; no other port is open to the world.`,
    });
    this.connections = securityGroup.connections;

    // Heartbeats write the host's own server item; releasing a room writes the room. Never regions.
    grantRegionalTableAccess(role, props.table, { writes: ['server', 'room'] });
    props.mediaTokenKeys.grantRead(role);

    // Filled in below, once the group's logical id (the boot signal's target) exists; rendered lazily.
    const userData = ec2.UserData.forLinux();
    const launchTemplate = hostLaunchTemplate(this, {
      parts,
      securityGroup,
      userData,
      rootVolumeGib: ROOT_VOLUME_GIB,
      publicAddress: true,
    });

    const terminationPolicy = this.terminationPolicyFunction(props.table);

    // A group without hosts at rest has nothing to signal at creation; its updates still replace hosts
    // one by one, unchecked (docs/DEPLOY.md).
    const signals =
      props.minCapacity > 0
        ? autoscaling.Signals.waitForMinCapacity({ timeout: MEDIA_BOOT_TIMEOUT, minSuccessPercentage: 100 })
        : undefined;
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Resource', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      launchTemplate,
      minCapacity: props.minCapacity,
      maxCapacity: props.maxCapacity,
      // EC2 status checks, plus the host's own verdict on its media server (media-health-watch).
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
      defaultInstanceWarmup: Duration.minutes(3),
      groupMetrics: [autoscaling.GroupMetrics.all()],
      signals,
      // A new launch template version (image, settings) replaces hosts one at a time: each new host must
      // signal a healthy boot before the next old one goes (through the drain hook), and a failed one
      // rolls the update back. MinInstancesInService must stay below MaxSize.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.min(props.minCapacity, props.maxCapacity - 1),
        minSuccessPercentage: 100,
        pauseTime: MEDIA_BOOT_TIMEOUT,
      }),
      terminationPolicies: [
        autoscaling.TerminationPolicy.CUSTOM_LAMBDA_FUNCTION,
        // When the function hands the choice back (no room counts), prefer hosts on old settings.
        autoscaling.TerminationPolicy.OLDEST_LAUNCH_TEMPLATE,
        autoscaling.TerminationPolicy.DEFAULT,
      ],
      terminationPolicyCustomLambdaFunctionArn: terminationPolicy.functionArn,
    });
    const groupResource = this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    // The boot installs Docker, reads the key set, pulls the image and signals CloudFormation, all over
    // the internet: no host may start before its subnets' default routes exist, or a first deploy can
    // launch hosts that cannot reach anything and roll back. ec2.Instance adds this dependency itself;
    // an Auto Scaling group does not.
    groupResource.node.addDependency(
      props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PUBLIC }).internetConnectivityEstablished,
    );

    userData.addCommands(
      ...mediaHostScript({
        region: stack.region,
        tableName: props.table.tableName,
        mediaTokenKeysSecretArn: props.mediaTokenKeys.secretArn,
        imageUri: image.imageUri,
        logGroupName: logGroup.logGroupName,
        lifecycleHookName: MEDIA_DRAIN_HOOK_NAME,
        signalingPort: props.signalingPort,
        rtcMinPort: props.rtcPortMin,
        rtcMaxPort: props.rtcPortMax,
        drainTimeoutSeconds: drainTimeout.toSeconds(),
        logLevel: props.logLevel ?? 'info',
        bootSignal: signals
          ? { stackName: Aws.STACK_NAME, logicalResourceId: stack.getLogicalId(groupResource) }
          : undefined,
        bootHealthTimeoutSeconds: MEDIA_BOOT_TIMEOUT.minus(Duration.minutes(2)).toSeconds(),
      }),
    );
    // Reports the boot to CloudFormation; SignalResource names the stack, so only this stack is allowed.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }),
    );
    this.autoScalingGroup.scaleOnCpuUtilization('CpuScaling', {
      targetUtilizationPercent: props.cpuTargetPercent ?? 50,
    });
    this.autoScalingGroup.addLifecycleHook('DrainHook', {
      lifecycleHookName: MEDIA_DRAIN_HOOK_NAME,
      lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
      heartbeatTimeout: hookTimeout,
      // If the host dies mid-drain there is nothing left to wait for.
      defaultResult: autoscaling.DefaultResult.CONTINUE,
    });

    const lifecyclePolicy = ownGroupPolicy(this, 'LifecyclePolicy', {
      role,
      group: this.autoScalingGroup,
      // Completes its own drain hook; marks itself unhealthy when its media server stays down.
      actions: ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth'],
      // Finds the group name from the instance id; this action has no resource-level permissions.
      statements: [
        new iam.PolicyStatement({ actions: ['autoscaling:DescribeAutoScalingInstances'], resources: ['*'] }),
      ],
    });
    Validations.of(lifecyclePolicy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'autoscaling:DescribeAutoScalingInstances supports no resource-level permissions; it is read-only ' +
        'and lets a host find the group it must complete its termination hook in.',
    });
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        'Scaling activity is in the group activity history and EventBridge; per-instance SNS notifications ' +
        'would page nobody, and drains are visible in the media server logs.',
    });
  }

  /** Fewest rooms first; Auto Scaling's service-linked role invokes it (Auto Scaling user guide). */
  private terminationPolicyFunction(table: dynamodb.ITableV2): lambda.Function {
    const stack = Stack.of(this);
    const fn = new lambda.Function(this, 'TerminationPolicy', {
      description: 'Media fleet scale-in: terminate the hosts with the fewest rooms first',
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(inlineFunctionSource('termination-policy')),
      timeout: TERMINATION_POLICY_TIMEOUT,
      memorySize: 256,
      environment: { TABLE_NAME: table.tableName },
      logGroup: new logs.LogGroup(this, 'TerminationPolicyLogs', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    // It reads server items only.
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['dynamodb:BatchGetItem'],
      resourceArns: [table.tableArn],
    });
    // An unqualified ARN in the group's policies needs the permission on the unpublished function.
    fn.addPermission('InvokedByAutoScaling', {
      principal: new iam.ArnPrincipal(
        `arn:${stack.partition}:iam::${stack.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
      ),
      action: 'lambda:InvokeFunction',
    });
    const fnRole = fn.role!;
    Validations.of(fnRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        'The termination policy function writes only its own logs with this AWS managed policy; its one data ' +
        "permission is BatchGetItem on this region's table replica.",
    });
    return fn;
  }
}
