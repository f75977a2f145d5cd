/**
 * The region's TURN relay: coturn on a small Auto Scaling group of its own (Amazon Linux 2023, the
 * coturn project's image; lib/turn-host-script.ts), behind an internet-facing Network Load Balancer.
 *
 *   UDP and TCP 3478   one TCP_UDP listener (an NLB takes one listener per port; TCP_UDP is how it
 *                      serves both), forwarded to coturn's port 3478 with the client's address kept
 *   TLS 443            a TLS listener with the relay's ACM certificate, forwarded as plain TCP to the
 *                      same port. ACM certificates cannot be exported to an instance, so the load
 *                      balancer terminates TLS; 443 gets through firewalls that allow nothing but HTTPS.
 *
 * The hosts sit in private subnets and take traffic only from the load balancer's security group.
 * Relayed media leaves them for the media fleet's security group, on its RTC ports, and nothing else:
 * a TURN relay sends wherever its client asks, from inside the VPC, so it must not become a way into
 * anything (the classic TURN SSRF). Two layers hold that:
 *
 *   - security groups: egress is the media fleet's RTC port range (UDP) and HTTPS for AWS APIs, and
 *     nothing else. They cannot see the link-local services (instance metadata, the Amazon DNS
 *     resolver, time sync) or the VPC resolver at the VPC base + 2: security groups do not filter
 *     traffic to those.
 *   - coturn's peer policy (runtime/protocol/turnRelayPolicy.ts): every peer denied except the media
 *     subnets' usable addresses. A media host only ever gets an address between its subnet's base + 4
 *     and its last address but one (AWS reserves the others: router, DNS resolver, broadcast), so that
 *     is the whole allow list, and it never covers a link-local, loopback or relay host address.
 *
 * This means a relayed path reaches a media server at its private address. Media hosts announce their
 * public address in ICE, so they must also offer a host candidate with their private address (the same
 * socket, which listens on 0.0.0.0); a relayed candidate pair then forms with it, inside the VPC.
 *
 * Health is visible the way the media fleet's is: each boot signals CloudFormation, a host whose relay
 * stays down marks itself unhealthy, the group also follows the load balancer's target health, and the
 * target groups' and group's metrics are there for alarms.
 */
import { Aws, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { hostLaunchTemplate, hostParts, ownGroupPolicy } from './host-fleet';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  COTURN_HARDENING,
  coturnPeerPolicy,
  formatRange,
  ipv4Range,
  type Ipv4Range,
  TURN_PORT,
  TurnPolicyError,
} from '../runtime/protocol/turnRelayPolicy';
import { TURN_HOST_PREFIX } from './names';
import { turnHostScript } from './turn-host-script';

/** TURN over TLS: the load balancer's TLS listener, on the port firewalls leave open. */
export const TURN_TLS_PORT = 443;
export { TURN_HOST_PREFIX };
/** Image of the relay: the coturn project's, mirrored into this region's asset repository. */
export const TURN_IMAGE_DIRECTORY = 'runtime/turn';
/** A boot is a Docker install and a small image pull; past this CloudFormation counts it as failed. */
export const TURN_BOOT_TIMEOUT = Duration.minutes(10);
/**
 * How long a host leaving the group keeps its flows: enough for a rolling update not to cut every
 * relayed call at the same moment, short enough that an update of a few hosts takes minutes.
 */
const DEREGISTRATION_DELAY = Duration.seconds(120);
/** CPU the group scales out at: relaying is packets in and out, which is CPU (and network) bound. */
const CPU_TARGET_PERCENT = 60;
const ROOT_VOLUME_GIB = 16;
/**
 * Addresses AWS keeps in every subnet (VPC user guide, "Subnet CIDR blocks"): the network address,
 * the VPC router (+1), the DNS resolver (+2; the VPC's is at its base + 2), one for future use (+3),
 * and the last one. No instance ever has them.
 */
const AWS_RESERVED_AT_START = 4;
const AWS_RESERVED_AT_END = 1;

export interface TurnRelayMediaFleet {
  /** The media hosts' security group: relayed media may go to it and nowhere else. */
  readonly connections: ec2.IConnectable;
  /** Subnets the media hosts run in: their usable addresses are what coturn may relay to. */
  readonly subnets: ec2.SubnetSelection;
  readonly rtcPortMin: number;
  readonly rtcPortMax: number;
}

export interface TurnRelayProps {
  readonly vpc: ec2.IVpc;
  /** Docker build context of the relay image (`TURN_IMAGE_DIRECTORY` under the repository root). */
  readonly imageDirectory: string;
  /** EC2 instance type; its architecture selects the AMI and the image platform. */
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /**
   * This region's replica of the TURN secret, imported by its full ARN (RegionalSecret): the hosts read
   * it in this region at start.
   */
  readonly secret: secretsmanager.ISecret;
  /**
   * Default certificate of the TLS listener: the relay's primary name, and its backup name unless
   * `backupCertificate` is given.
   */
  readonly certificate: acm.ICertificate;
  /**
   * A second certificate for the relay's backup name, in this region (imported for a backup zone at
   * another DNS provider); the NLB picks it by SNI.
   * @default - `certificate` covers the backup name too
   */
  readonly backupCertificate?: acm.ICertificate;
  /** TURN realm, sent in every 401 challenge: the relay's primary name. */
  readonly realm: string;
  readonly media: TurnRelayMediaFleet;
  /**
   * UDP ports coturn allocates relays from.
   * @default 49152-65535 (coturn's default, RFC 5766)
   */
  readonly relayPortMin?: number;
  /** @default 65535 */
  readonly relayPortMax?: number;
}

export class TurnRelay extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** UDP and TCP on 3478. */
  readonly udpTcpTargetGroup: elbv2.NetworkTargetGroup;
  /** TLS on 443, forwarded as TCP. */
  readonly tlsTargetGroup: elbv2.NetworkTargetGroup;
  /** The relay hosts' security group. */
  readonly connections: ec2.Connections;
  /** What coturn may relay to: the media subnets' usable ranges (`first-last`). */
  readonly allowedPeers: readonly string[];
  readonly minCapacity: number;
  readonly maxCapacity: number;

  constructor(scope: Construct, id: string, props: TurnRelayProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const relayPortMin = props.relayPortMin ?? 49152;
    const relayPortMax = props.relayPortMax ?? 65535;
    if (relayPortMin > relayPortMax || (relayPortMin <= TURN_PORT && TURN_PORT <= relayPortMax)) {
      throw new Error(
        `TurnRelay relay ports ${relayPortMin}-${relayPortMax} are not a range above the listening port ` +
          `${TURN_PORT}; use a range such as 49152-65535`,
      );
    }
    if (props.media.rtcPortMin > props.media.rtcPortMax) {
      throw new Error(
        `TurnRelay media.rtcPortMin ${props.media.rtcPortMin} exceeds media.rtcPortMax ${props.media.rtcPortMax}`,
      );
    }
    if (props.minCapacity < 1 || props.minCapacity > props.maxCapacity) {
      throw new Error(
        `TurnRelay capacity ${props.minCapacity}-${props.maxCapacity} is not a range from at least 1; ` +
          'keep at least one relay host and minCapacity <= maxCapacity',
      );
    }
    if (!props.secret.secretFullArn) {
      throw new Error(
        `TurnRelay secret "${props.secret.secretName}" has no full ARN; import this region's replica with ` +
          'Secret.fromSecretCompleteArn (RegionalSecret) so the grant names it exactly',
      );
    }
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(props.realm)) {
      throw new Error(`TurnRelay realm "${props.realm}" is not a DNS name; use the relay's primary name`);
    }
    this.minCapacity = props.minCapacity;
    this.maxCapacity = props.maxCapacity;

    const mediaSubnets = props.vpc.selectSubnets(props.media.subnets).subnets;
    this.allowedPeers = mediaSubnets.map((subnet) => formatRange(usableSubnetRange(subnet.ipv4CidrBlock)));
    let peerPolicy: string[];
    try {
      peerPolicy = coturnPeerPolicy(this.allowedPeers, 'media subnets');
    } catch (err) {
      if (err instanceof TurnPolicyError) throw new Error(`TurnRelay ${err.message}`, { cause: err });
      throw err;
    }

    const parts = hostParts(this, {
      instanceType: props.instanceType,
      image: { directory: props.imageDirectory },
      roleDescription: 'TURN relay host: the TURN secret, its own image, logs, health and boot signal',
    });
    const { image, logGroup, role } = parts;

    // The load balancer's own group: the public face. Only the TURN ports are open to the world.
    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'TURN relay load balancer: TURN over UDP/TCP 3478 and TLS 443 from anywhere',
      allowAllOutbound: false,
    });
    lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.udp(TURN_PORT), 'TURN over UDP');
    lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(TURN_PORT), 'TURN over TCP');
    lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(TURN_TLS_PORT), 'TURN over TLS');
    Validations.of(lbSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'Clients behind NATs and firewalls anywhere on the internet reach the TURN relay, so TURN over ' +
        `UDP and TCP ${TURN_PORT} and over TLS ${TURN_TLS_PORT} are open to 0.0.0.0/0; nothing else is, and ` +
        'only authenticated allocations relay anything.',
    });

    const hostSecurityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description:
        'TURN relay hosts: TURN from the load balancer only; relayed media to the media fleet only',
      allowAllOutbound: false,
    });
    // With client addresses preserved, a target still accepts the load balancer's traffic through a
    // rule on the load balancer's security group (ELB user guide, NLB security groups). The same call
    // opens the load balancer's egress to the hosts on these ports, and nothing else: health checks
    // use them too, and they are subject to the load balancer's outbound rules.
    for (const port of [ec2.Port.udp(TURN_PORT), ec2.Port.tcp(TURN_PORT)]) {
      hostSecurityGroup.connections.allowFrom(lbSecurityGroup, port, 'TURN through the load balancer');
    }
    hostSecurityGroup.connections.allowTo(
      props.media.connections,
      ec2.Port.udpRange(props.media.rtcPortMin, props.media.rtcPortMax),
      'Relayed media to the media fleet',
    );
    // Secrets Manager, ECR, CloudWatch Logs, CloudFormation, Auto Scaling, SSM: all HTTPS, through NAT.
    hostSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs over HTTPS');
    this.connections = hostSecurityGroup.connections;

    props.secret.grantRead(role);

    const userData = ec2.UserData.forLinux();
    const launchTemplate = hostLaunchTemplate(this, {
      parts,
      securityGroup: hostSecurityGroup,
      userData,
      rootVolumeGib: ROOT_VOLUME_GIB,
      publicAddress: false,
    });

    const signals = autoscaling.Signals.waitForMinCapacity({
      timeout: TURN_BOOT_TIMEOUT,
      minSuccessPercentage: 100,
    });
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Resource', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate,
      minCapacity: props.minCapacity,
      maxCapacity: props.maxCapacity,
      // EC2 status checks, the load balancer's target health, and the host's own probe (health watch).
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(5),
      }),
      defaultInstanceWarmup: Duration.minutes(2),
      groupMetrics: [autoscaling.GroupMetrics.all()],
      signals,
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.min(props.minCapacity, props.maxCapacity - 1),
        minSuccessPercentage: 100,
        pauseTime: TURN_BOOT_TIMEOUT,
      }),
    });
    const groupResource = this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    // The boot reaches Docker's packages, the secret, the image and CloudFormation through the NAT
    // gateways: no host may start before the private subnets' default routes to them exist (NAT gateways
    // take minutes to create; a host booted earlier fails its boot and rolls the first deploy back).
    groupResource.node.addDependency(
      props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS })
        .internetConnectivityEstablished,
    );
    // Scale out only. A host that leaves takes its relayed calls with it (they recover by ICE restart
    // or rejoin); until hosts drain their allocations on termination, operators scale in by hand.
    this.autoScalingGroup.scaleOnCpuUtilization('CpuScaling', {
      targetUtilizationPercent: CPU_TARGET_PERCENT,
      disableScaleIn: true,
    });

    userData.addCommands(
      ...turnHostScript({
        region: stack.region,
        turnSecretArn: props.secret.secretArn,
        imageUri: image.imageUri,
        logGroupName: logGroup.logGroupName,
        staticConfig: [
          `listening-port=${TURN_PORT}`,
          // The load balancer terminates TLS and forwards plain TCP; coturn opens no TLS or DTLS listener.
          'no-tls',
          `min-port=${relayPortMin}`,
          `max-port=${relayPortMax}`,
          `realm=${props.realm}`,
          ...COTURN_HARDENING,
          ...peerPolicy,
          'log-file=stdout',
        ],
        bootSignal: { stackName: Aws.STACK_NAME, logicalResourceId: stack.getLogicalId(groupResource) },
        bootHealthTimeoutSeconds: TURN_BOOT_TIMEOUT.minus(Duration.minutes(2)).toSeconds(),
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }),
    );
    ownGroupPolicy(this, 'HealthPolicy', {
      role,
      group: this.autoScalingGroup,
      actions: ['autoscaling:SetInstanceHealth'],
    });

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [lbSecurityGroup],
      // With a host per AZ, a zone whose host is down still forwards to the other one instead of
      // leaving clients that resolved its address with nothing.
      crossZoneEnabled: true,
    });
    const healthCheck: elbv2.HealthCheck = {
      protocol: elbv2.Protocol.TCP,
      interval: Duration.seconds(10),
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 2,
    };
    this.udpTcpTargetGroup = new elbv2.NetworkTargetGroup(this, 'UdpTcpTargets', {
      vpc: props.vpc,
      port: TURN_PORT,
      protocol: elbv2.Protocol.TCP_UDP,
      targetType: elbv2.TargetType.INSTANCE,
      targets: [this.autoScalingGroup],
      healthCheck,
      deregistrationDelay: DEREGISTRATION_DELAY,
    });
    this.tlsTargetGroup = new elbv2.NetworkTargetGroup(this, 'TlsTargets', {
      vpc: props.vpc,
      port: TURN_PORT,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.INSTANCE,
      targets: [this.autoScalingGroup],
      healthCheck,
      deregistrationDelay: DEREGISTRATION_DELAY,
    });
    this.loadBalancer.addListener('UdpTcp', {
      port: TURN_PORT,
      protocol: elbv2.Protocol.TCP_UDP,
      defaultTargetGroups: [this.udpTcpTargetGroup],
    });
    this.loadBalancer.addListener('Tls', {
      port: TURN_TLS_PORT,
      protocol: elbv2.Protocol.TLS,
      // A further certificate goes in the listener's certificate list, chosen by SNI (NLB guide, "Server
      // certificates").
      certificates: [props.certificate, ...(props.backupCertificate ? [props.backupCertificate] : [])].map(
        (c) => elbv2.ListenerCertificate.fromCertificateManager(c),
      ),
      // TLS 1.3 preferred, TLS 1.2 kept for older clients.
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      defaultTargetGroups: [this.tlsTargetGroup],
    });
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        'Scaling activity is in the group activity history and EventBridge; per-instance SNS notifications ' +
        'would page nobody, and a relay host that fails marks itself unhealthy and is replaced.',
    });
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'NLB access logs record TLS listener connections only, not the UDP and TCP flows that carry most ' +
        "TURN traffic; coturn's own log (CloudWatch Logs) records every allocation with the client address " +
        'and the peer id in its username, and the VPC flow log records rejected flows.',
    });
  }

  /** Hosts the load balancer counts healthy for UDP/TCP: alarm when it drops below the group's minimum. */
  metricHealthyHosts(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.udpTcpTargetGroup.metrics.healthyHostCount({
      statistic: cloudwatch.Stats.MINIMUM,
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** Hosts failing the load balancer's health check on either target group. */
  metricUnhealthyHosts(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: 'MAX([udptcp, tls])',
      usingMetrics: {
        udptcp: this.udpTcpTargetGroup.metrics.unHealthyHostCount({ statistic: cloudwatch.Stats.MAXIMUM }),
        tls: this.tlsTargetGroup.metrics.unHealthyHostCount({ statistic: cloudwatch.Stats.MAXIMUM }),
      },
      period: props?.period ?? Duration.minutes(1),
      label: props?.label ?? 'TURN relay hosts failing health checks',
    });
  }
}

/**
 * The addresses an instance can have in a subnet: all but the four first and the last one, which AWS
 * reserves (the DNS resolver among them).
 */
export function usableSubnetRange(cidr: string): Ipv4Range {
  if (Token.isUnresolved(cidr)) {
    throw new Error(
      "TurnRelay needs the media subnets' CIDR blocks at synth time to write coturn's allow list; " +
        'pass subnets of a VPC defined in this app (not a token)',
    );
  }
  const range = ipv4Range(cidr);
  if (range.last - range.first + 1 <= AWS_RESERVED_AT_START + AWS_RESERVED_AT_END) {
    throw new Error(`TurnRelay media subnet ${cidr} has no usable address`);
  }
  return { first: range.first + AWS_RESERVED_AT_START, last: range.last - AWS_RESERVED_AT_END };
}

/** The relay's name in each family, next to the region's API name: `turn.<region>.<api name>`. */
export function turnRelayDomainNames(dns: {
  readonly regionApiDomainName: string;
  readonly backupRegionApiDomainName: string;
}): { readonly primary: string; readonly backup: string } {
  return {
    primary: `${TURN_HOST_PREFIX}${dns.regionApiDomainName}`,
    backup: `${TURN_HOST_PREFIX}${dns.backupRegionApiDomainName}`,
  };
}
