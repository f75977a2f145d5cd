/**
 * The region's LB service (placement API + signaling edge): ECS Fargate tasks behind an internet-facing
 * ALB that speaks HTTPS only.
 *
 * The ALB's target health check asks `/health` but accepts 503 as well: a 503 means "this region cannot
 * place rooms right now" (no live media server, region evacuated), which Route 53's health check turns
 * into DNS failover. Letting the target group fail on it instead would make ECS kill and replace healthy
 * processes in a loop exactly while the region is degraded, and block every deploy until media servers
 * exist. The target group only has to notice a dead or hung process.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { LB_SECRET_VARIABLES, lbEnvironment, type LbTurnSettings } from '../runtime/protocol/lbEnvironment';
import type { LogLevel } from '../runtime/protocol/environment';
import { grantRegionalTableAccess } from './table-access';

/**
 * Fargate task size: the LB is I/O-bound (DynamoDB calls, WebSocket relays). The image caps V8's old
 * generation at a quarter of this memory (runtime/lb/Dockerfile, `--max-old-space-size=256`): change
 * both together.
 */
const TASK_CPU_UNITS = 512;
const TASK_MEMORY_MIB = 1024;
/** Scale out before a task saturates: relaying signaling is CPU in Node's single thread. */
const CPU_TARGET_PERCENT = 60;
/** Joins are short requests; a WebSocket upgrade counts once, the relay is covered by CPU. */
const REQUESTS_PER_TARGET = 1000;
/** Ceiling multiplier over the configured desired count. */
const MAX_TASKS_FACTOR = 4;
/**
 * Signaling sockets ping well inside this; long enough that an idle call does not drop. The LB process
 * must keep idle connections open longer than this (runtime/lb/config.ts keepAliveTimeoutMs), so that
 * the ALB, not the target, closes them: a target that closes first races the ALB's next request on that
 * connection, which the ALB answers with a 502.
 */
export const ALB_IDLE_TIMEOUT = Duration.seconds(120);
/** Clients reconnect elsewhere on close; a short drain keeps deploys fast. */
const DEREGISTRATION_DELAY = Duration.seconds(30);
const ACCESS_LOG_RETENTION = Duration.days(90);
/**
 * What the ALB forwards to the service; everything else gets the listener's fixed 404. An allow list
 * rather than a block of `/metrics`: the service's router decodes percent-escapes (`/%6Detrics` routes
 * to `/metrics`) while ALB path patterns match the raw path, so a deny rule could be walked around.
 */
export const PUBLIC_PATH_PATTERNS: readonly string[] = ['/v1/*', '/health'];
/** The body of the listener's 404, in the service's own error shape. */
const NOT_FOUND_BODY = JSON.stringify({ error: { code: 'not_found', message: 'no such route' } });

export interface LbServiceProps {
  readonly vpc: ec2.IVpc;
  /**
   * The listener's default certificate: api.<domain> and <region>.api.<domain>, and the backup names
   * api-backup.<backupDomain> and <region>.api-backup.<backupDomain> unless `backupCertificate` is given.
   */
  readonly certificate: acm.ICertificate;
  /**
   * A second certificate for the backup names, in this region (an ACM certificate imported for a backup
   * zone at another DNS provider). The ALB picks it by SNI for those names.
   * @default - `certificate` covers the backup names too
   */
  readonly backupCertificate?: acm.ICertificate;
  readonly image: ecs.ContainerImage;
  /** This region's replica of the global table. */
  readonly table: dynamodb.ITableV2;
  /**
   * This region's replica of the join-token key set, imported by its full ARN (ECS takes nothing else
   * as a Secrets Manager `valueFrom`). The LB verifies join tokens with it.
   */
  readonly joinTokenKeys: secretsmanager.ISecret;
  /** This region's replica of the media-token key set, by its full ARN. The LB signs media tokens with it. */
  readonly mediaTokenKeys: secretsmanager.ISecret;
  /**
   * This region's replica of the TURN secret, by its full ARN: the LB signs the TURN credentials of its
   * join answers with it (the relays check them with the same secret).
   */
  readonly turnSecret: secretsmanager.ISecret;
  /** How join answers name the serving region's relay. */
  readonly turn: LbTurnSettings;
  /** This region's own public base URL, written to the region summary item for other regions to read. */
  readonly publicApiUrl: string;
  /** This region in the backup name family; joins through a backup name are answered in it. */
  readonly backupApiUrl: string;
  /** The backup zone's domain: a request whose Host is under it gets backup names back. */
  readonly backupDomain: string;
  readonly containerPort: number;
  readonly desiredCount: number;
  /**
   * Upper bound for autoscaling.
   * @default - `desiredCount` times 4
   */
  readonly maxCount?: number;
  /**
   * Browser origins allowed to call the API cross-origin.
   * @default - none: only same-origin pages and non-browser clients
   */
  readonly corsOrigins?: readonly string[];
  /**
   * Level of the service's pino logger.
   * @default 'info'
   */
  readonly logLevel?: LogLevel;
}

export class LbService extends Construct {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly service: ecs.FargateService;
  readonly cluster: ecs.Cluster;
  /** Security group membership of the tasks: media servers admit signaling relays from it. */
  readonly connections: ec2.Connections;
  /** The tasks' target group: its health and 5xx metrics feed the region's alarms. */
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** The lowest task count autoscaling keeps (the configured desired count). */
  readonly minTaskCount: number;

  constructor(scope: Construct, id: string, props: LbServiceProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    for (const [prop, secret] of [
      ['joinTokenKeys', props.joinTokenKeys],
      ['mediaTokenKeys', props.mediaTokenKeys],
      ['turnSecret', props.turnSecret],
    ] as const) {
      if (!secret.secretFullArn) {
        throw new Error(
          `LbService ${prop} "${secret.secretName}" has no full ARN; ECS reads anything else as an SSM ` +
            'parameter and the task fails to start. Import it with Secret.fromSecretCompleteArn ' +
            '(RegionalSecret resolves it in this region)',
        );
      }
    }
    const maxCount = props.maxCount ?? props.desiredCount * MAX_TASKS_FACTOR;
    if (maxCount < props.desiredCount) {
      throw new Error(
        `LbService maxCount (${maxCount}) is below desiredCount (${props.desiredCount}); raise maxCount`,
      );
    }

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: TASK_CPU_UNITS,
      memoryLimitMiB: TASK_MEMORY_MIB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    taskDefinition.addContainer('lb', {
      image: props.image,
      essential: true,
      portMappings: [{ containerPort: props.containerPort, protocol: ecs.Protocol.TCP }],
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'lb', logGroup }),
      // The LB's environment contract (runtime/protocol/lbEnvironment.ts); nothing here names another region.
      environment: lbEnvironment({
        region,
        tableName: props.table.tableName,
        host: '0.0.0.0',
        port: props.containerPort,
        publicApiUrl: props.publicApiUrl,
        backupApiUrl: props.backupApiUrl,
        backupDomain: props.backupDomain,
        // The ALB is the one proxy in front: trust its X-Forwarded-For so rate limits see client addresses.
        trustProxyHops: 1,
        logLevel: props.logLevel ?? 'info',
        corsOrigins: props.corsOrigins,
        turn: props.turn,
      }),
      // Whole key sets (JSON: current key, verify-only keys); runtime/lb reads both. No join keys ever go
      // to a media host, and these never go into the plain environment.
      secrets: {
        [LB_SECRET_VARIABLES.joinTokenKeys]: ecs.Secret.fromSecretsManager(props.joinTokenKeys),
        [LB_SECRET_VARIABLES.mediaTokenKeys]: ecs.Secret.fromSecretsManager(props.mediaTokenKeys),
        [LB_SECRET_VARIABLES.turnSecret]: ecs.Secret.fromSecretsManager(props.turnSecret),
      },
    });
    // Placement writes rooms; the region reporter writes this region's summary. Nothing else.
    grantRegionalTableAccess(taskDefinition.taskRole, props.table, { writes: ['room', 'region'] });

    const serviceSecurityGroup = new ec2.SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc: props.vpc,
      description: 'LB service tasks: ingress from the ALB only; egress to AWS APIs and media signaling',
      allowAllOutbound: false,
    });
    // DynamoDB (gateway endpoint), Secrets Manager, ECR, CloudWatch Logs: all HTTPS.
    serviceSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs over HTTPS');

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition,
      desiredCount: props.desiredCount,
      securityGroups: [serviceSecurityGroup],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
    });
    this.connections = this.service.connections;

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: ACCESS_LOG_RETENTION }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'S1 asks for S3 server access logs of this bucket. It is itself a log bucket: ELB log delivery is ' +
        'its only writer (bucket policy), SSE-S3 as ALB access logs require, public access blocked, TLS ' +
        'enforced. Logging requests to it would need a second bucket with the same finding; audit reads ' +
        'of these logs with CloudTrail S3 data events if you need that (not enabled by this stack).',
    });

    const albSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'Public HTTPS API and signaling edge of this region',
      allowAllOutbound: false,
    });
    albSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS from clients anywhere');
    Validations.of(albSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'The join API and signaling WebSocket are public by design: any client on the internet must reach ' +
        'port 443 of this ALB. Only 443 is open; there is no HTTP listener.',
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: albSecurityGroup,
      idleTimeout: ALB_IDLE_TIMEOUT,
      dropInvalidHeaderFields: true,
      http2Enabled: true,
    });
    this.loadBalancer.logAccessLogs(accessLogs, 'alb');

    const listener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      // The first certificate is the listener's default; CDK attaches any further one as a
      // ListenerCertificate (the listener's certificate list), which the ALB chooses from by the name the
      // client sends in SNI, falling back to the default without SNI (ALB guide, "SSL certificates for
      // your Application Load Balancer"). Every client of the backup names (browsers, the SDK, health
      // checks with SNI on) sends it.
      certificates: [props.certificate, ...(props.backupCertificate ? [props.backupCertificate] : [])],
      // TLS 1.3 preferred, TLS 1.2 kept: Route 53 HTTPS health checkers only speak TLS 1.0-1.2, so a
      // TLS 1.3-only policy would mark every region unhealthy.
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false,
      // Not the service: /metrics and any path the API does not serve stop here.
      defaultAction: elbv2.ListenerAction.fixedResponse(404, {
        contentType: 'application/json',
        messageBody: NOT_FOUND_BODY,
      }),
    });
    const targetGroup = listener.addTargets('Lb', {
      priority: 10,
      conditions: [elbv2.ListenerCondition.pathPatterns([...PUBLIC_PATH_PATTERNS])],
      port: props.containerPort,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [this.service.loadBalancerTarget({ containerName: 'lb', containerPort: props.containerPort })],
      deregistrationDelay: DEREGISTRATION_DELAY,
      healthCheck: {
        path: '/health',
        healthyHttpCodes: '200,503',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });

    this.targetGroup = targetGroup;
    this.minTaskCount = props.desiredCount;
    const scaling = this.service.autoScaleTaskCount({
      minCapacity: props.desiredCount,
      maxCapacity: maxCount,
    });
    scaling.scaleOnCpuUtilization('CpuScaling', { targetUtilizationPercent: CPU_TARGET_PERCENT });
    scaling.scaleOnRequestCount('RequestScaling', { requestsPerTarget: REQUESTS_PER_TARGET, targetGroup });

    Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken supports no resource-level permissions; the image pull itself is scoped ' +
        "to this region's CDK asset repository.",
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds only non-secret settings (region, table name, port, public URL, log level, ' +
        'TURN relay ports); both key sets and the TURN secret are injected from Secrets Manager through ' +
        '`secrets`, by their full ARNs.',
    });
  }
}
