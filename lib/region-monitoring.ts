/**
 * What an operator of one region watches: a dashboard and alarms on every part a join goes through, from
 * the outside in. Everything is this region's own: the metrics are published here, the alarms act here,
 * nothing names another region. (Route 53 health-check metrics exist in us-east-1 only; their alarms are
 * in the optional monitoring stack, monitoring-stack.ts.)
 *
 *   canary            this region's /health, a join through the region's name, a join through api-backup
 *   ALB               5xx it generates itself, 5xx rate of the targets, unhealthy and missing targets
 *   LB service        running tasks below the configured count
 *   media fleet       in-service hosts below the minimum, desired capacity at the ceiling, CPU
 *   table replica     replication latency to the other replicas, read and write throttles
 *
 * `regionImpaired` is a composite of the alarms that mean "this region cannot serve joins".
 */
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as synthetics from 'aws-cdk-lib/aws-synthetics';
import { Construct } from 'constructs';
import type { CANARY_STEPS } from './functions/join-canary';

const MINUTE = Duration.minutes(1);
/** ALB-generated 5xx per minute that mean more than a client's bad luck. */
const ELB_5XX_PER_MINUTE = 10;
/** Share of target responses that are 5xx (a region answering 503 on /health counts: it is sick). */
const TARGET_5XX_PERCENT = 5;
/** Sustained average CPU of the media fleet well above its 50% scaling target: scaling is not keeping up. */
const MEDIA_CPU_PERCENT = 80;
/** Global tables usually replicate within a second; ten seconds sustained means replication is in trouble. */
const REPLICATION_LATENCY_MS = 10_000;

export interface RegionMonitoringProps {
  /** Prefix of alarm names and the dashboard's name: `<appName>-<region>`. */
  readonly namePrefix: string;
  readonly topic: sns.ITopic;
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  readonly targetGroup: elbv2.IApplicationTargetGroup;
  readonly lbService: ecs.IBaseService;
  /** The LB service's lowest task count (autoscaling minimum). */
  readonly lbMinTasks: number;
  readonly mediaGroup: autoscaling.IAutoScalingGroup;
  readonly mediaMinHosts: number;
  readonly mediaMaxHosts: number;
  /** The TURN relay's hosts and the target group its load balancer forwards TURN (UDP/TCP 3478) to. */
  readonly turnGroup: autoscaling.IAutoScalingGroup;
  readonly turnMinHosts: number;
  readonly turnTargetGroup: elbv2.INetworkTargetGroup;
  /** This region's replica of the global table, by name. */
  readonly tableName: string;
  readonly canary: synthetics.Canary;
  readonly canarySteps: typeof CANARY_STEPS;
}

export class RegionMonitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: Record<string, cloudwatch.Alarm>;
  /** Fails when joins through api-backup keep failing: the stop condition of a blackhole drill. */
  readonly backupJoinAlarm: cloudwatch.Alarm;
  readonly regionImpaired: cloudwatch.CompositeAlarm;

  constructor(scope: Construct, id: string, props: RegionMonitoringProps) {
    super(scope, id);
    const action = new actions.SnsAction(props.topic);
    const alarm = (
      name: string,
      description: string,
      metric: cloudwatch.Metric | cloudwatch.MathExpression,
      opts: Omit<cloudwatch.CreateAlarmOptions, 'alarmName' | 'alarmDescription'>,
    ) => {
      const a = metric.createAlarm(this, name, {
        alarmName: `${props.namePrefix}-${name}`,
        alarmDescription: description,
        ...opts,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };

    const step = (name: string) =>
      new cloudwatch.Metric({
        namespace: 'CloudWatchSynthetics',
        metricName: 'SuccessPercent',
        dimensionsMap: { CanaryName: props.canary.canaryName, StepName: name },
        statistic: 'Average',
        period: MINUTE,
      });
    const alb = props.loadBalancer.metrics;
    const tg = props.targetGroup.metrics;
    const cluster = props.lbService.cluster.clusterName;
    const groupDims = { AutoScalingGroupName: props.mediaGroup.autoScalingGroupName };

    const canaryFailing = alarm(
      'CanaryFailing',
      'The join canary failed in 2 of the last 3 minutes (see the step alarms for which way in).',
      props.canary.metricSuccessPercent({ period: MINUTE, statistic: 'Average' }),
      {
        threshold: 100,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        // A canary that does not run checks nothing.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    const healthFailing = alarm(
      'HealthFailing',
      "This region's GET /health did not answer 200 in 2 of 3 minutes: Route 53 takes it out of api and api-backup.",
      step(props.canarySteps.health),
      {
        threshold: 100,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    const regionJoinFailing = alarm(
      'JoinViaRegionFailing',
      "A join through this region's own name failed in 2 of 3 minutes.",
      step(props.canarySteps.joinRegion),
      {
        threshold: 100,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    this.backupJoinAlarm = alarm(
      'JoinViaBackupFailing',
      'Joins through api-backup failed 3 minutes in a row: the second way in is broken. Stops a blackhole drill.',
      step(props.canarySteps.joinBackup),
      {
        threshold: 100,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        // Three, not two: while a region is being blackholed, api-backup may still send one attempt there
        // until Route 53's health check and the record's TTL have moved on.
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );

    const elb5xx = alarm(
      'AlbElb5xx',
      `The ALB itself answered more than ${ELB_5XX_PER_MINUTE} 5xx a minute (no target, or targets timing out).`,
      alb.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: MINUTE, statistic: 'Sum' }),
      {
        threshold: ELB_5XX_PER_MINUTE,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    const target5xxRate = alarm(
      'LbTarget5xxRate',
      `More than ${TARGET_5XX_PERCENT}% of the LB service's answers were 5xx.`,
      new cloudwatch.MathExpression({
        expression: 'IF(requests > 0, 100 * errors / requests, 0)',
        usingMetrics: {
          errors: tg.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: MINUTE,
            statistic: 'Sum',
          }),
          requests: tg.requestCount({ period: MINUTE, statistic: 'Sum' }),
        },
        period: MINUTE,
        label: 'target 5xx %',
      }),
      {
        threshold: TARGET_5XX_PERCENT,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    const unhealthyTargets = alarm(
      'LbUnhealthyTargets',
      'At least one LB task failed the ALB target health check for 3 minutes.',
      tg.unhealthyHostCount({ period: MINUTE, statistic: 'Maximum' }),
      {
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    const noHealthyTargets = alarm(
      'LbNoHealthyTargets',
      'The ALB has no healthy LB task: this region answers nothing.',
      tg.healthyHostCount({ period: MINUTE, statistic: 'Minimum' }),
      {
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    const tasksBelowMinimum = alarm(
      'LbTasksBelowMinimum',
      `Fewer than ${props.lbMinTasks} LB tasks ran for 5 minutes (tasks failing to start, or crashing).`,
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: cluster, ServiceName: props.lbService.serviceName },
        statistic: 'Minimum',
        period: MINUTE,
      }),
      {
        threshold: props.lbMinTasks,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 5,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );

    const mediaFloor = Math.max(1, props.mediaMinHosts);
    const mediaBelowMinimum = alarm(
      'MediaHostsBelowMinimum',
      `Fewer than ${mediaFloor} media hosts were in service for 10 minutes: hosts fail to boot or keep being replaced.`,
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName: 'GroupInServiceInstances',
        dimensionsMap: groupDims,
        statistic: 'Minimum',
        period: MINUTE,
      }),
      {
        threshold: mediaFloor,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 10,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    const mediaAtCeiling = alarm(
      'MediaFleetAtCeiling',
      `The media fleet wanted its maximum of ${props.mediaMaxHosts} hosts for 15 minutes: it cannot grow further; raise mediaMaxSize.`,
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName: 'GroupDesiredCapacity',
        dimensionsMap: groupDims,
        statistic: 'Maximum',
        period: MINUTE,
      }),
      {
        threshold: props.mediaMaxHosts,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 15,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    const mediaCpu = alarm(
      'MediaFleetCpuHigh',
      `The media fleet averaged over ${MEDIA_CPU_PERCENT}% CPU for 10 minutes: media quality suffers before joins fail.`,
      new cloudwatch.Metric({
        namespace: 'AWS/EC2',
        metricName: 'CPUUtilization',
        dimensionsMap: groupDims,
        statistic: 'Average',
        period: MINUTE,
      }),
      {
        threshold: MEDIA_CPU_PERCENT,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 10,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );

    // Published in the sending region, one series per receiving region. A Metrics Insights query takes
    // the worst of them without naming any other region, so this template stays the same when regions
    // come and go.
    const replicationLatency = alarm(
      'TableReplicationLatency',
      `Replication from this region's replica of ${props.tableName} to another replica took over ${REPLICATION_LATENCY_MS / 1000} s for 5 minutes.`,
      new cloudwatch.MathExpression({
        expression: `SELECT MAX(ReplicationLatency) FROM SCHEMA("AWS/DynamoDB", ReceivingRegion, TableName) WHERE TableName = '${props.tableName}'`,
        usingMetrics: {},
        period: MINUTE,
        label: 'replication latency (max over receiving regions), ms',
      }),
      {
        threshold: REPLICATION_LATENCY_MS,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    const tableMetric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/DynamoDB',
        metricName,
        dimensionsMap: { TableName: props.tableName },
        statistic: 'Sum',
        period: MINUTE,
      });
    const throttles = alarm(
      'TableThrottles',
      `Requests to this region's replica of ${props.tableName} were throttled in 3 of 5 minutes.`,
      new cloudwatch.MathExpression({
        expression: 'FILL(reads, 0) + FILL(writes, 0)',
        usingMetrics: {
          reads: tableMetric('ReadThrottleEvents'),
          writes: tableMetric('WriteThrottleEvents'),
        },
        period: MINUTE,
        label: 'throttle events',
      }),
      {
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );

    // The relay is how clients behind strict firewalls reach this region at all; it is watched like the
    // media fleet, but not part of RegionImpaired: every other client still joins without it.
    const turnFloor = Math.max(1, props.turnMinHosts);
    const turnBelowMinimum = alarm(
      'TurnHostsBelowMinimum',
      `Fewer than ${turnFloor} TURN relay hosts were in service for 10 minutes: relayed clients cannot join here.`,
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName: 'GroupInServiceInstances',
        dimensionsMap: { AutoScalingGroupName: props.turnGroup.autoScalingGroupName },
        statistic: 'Minimum',
        period: MINUTE,
      }),
      {
        threshold: turnFloor,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 10,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
    const turnNoHealthyTargets = alarm(
      'TurnNoHealthyTargets',
      "The TURN relay's load balancer had no healthy relay host for 3 minutes: relayed media fails here.",
      props.turnTargetGroup.metrics.healthyHostCount({ period: MINUTE, statistic: 'Minimum' }),
      {
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );

    this.alarms = {
      canaryFailing,
      healthFailing,
      regionJoinFailing,
      backupJoinFailing: this.backupJoinAlarm,
      elb5xx,
      target5xxRate,
      unhealthyTargets,
      noHealthyTargets,
      tasksBelowMinimum,
      mediaBelowMinimum,
      mediaAtCeiling,
      mediaCpu,
      turnBelowMinimum,
      turnNoHealthyTargets,
      replicationLatency,
      throttles,
    };

    this.regionImpaired = new cloudwatch.CompositeAlarm(this, 'RegionImpaired', {
      compositeAlarmName: `${props.namePrefix}-RegionImpaired`,
      alarmDescription:
        'This region cannot serve joins: its health check fails, joins through its name fail, or it has no ' +
        'healthy LB task, too few LB tasks or too few media hosts.',
      alarmRule: cloudwatch.AlarmRule.anyOf(
        healthFailing,
        regionJoinFailing,
        noHealthyTargets,
        tasksBelowMinimum,
        mediaBelowMinimum,
      ),
    });
    this.regionImpaired.addAlarmAction(action);
    this.regionImpaired.addOkAction(action);

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.namePrefix,
      defaultInterval: Duration.hours(3),
    });
    const wide = 12;
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: [this.regionImpaired, ...Object.values(this.alarms)],
        width: 24,
        height: 4,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Join canary: success % by step',
        left: Object.values(props.canarySteps).map((s) => step(s).with({ label: s })),
        leftYAxis: { min: 0, max: 100 },
        width: wide,
      }),
      new cloudwatch.GraphWidget({
        title: 'ALB: requests and 5xx',
        left: [tg.requestCount({ period: MINUTE, statistic: 'Sum', label: 'requests' })],
        right: [
          alb.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
            period: MINUTE,
            statistic: 'Sum',
            label: 'ALB 5xx',
          }),
          tg.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: MINUTE,
            statistic: 'Sum',
            label: 'target 5xx',
          }),
        ],
        width: wide,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'LB service: targets and tasks',
        left: [
          tg.healthyHostCount({ period: MINUTE, statistic: 'Minimum', label: 'healthy targets' }),
          tg.unhealthyHostCount({ period: MINUTE, statistic: 'Maximum', label: 'unhealthy targets' }),
          (tasksBelowMinimum.metric as cloudwatch.Metric).with({ label: 'running tasks' }),
        ],
        leftAnnotations: [{ value: props.lbMinTasks, label: 'configured tasks' }],
        width: wide,
      }),
      new cloudwatch.GraphWidget({
        title: 'Media fleet: hosts and CPU',
        left: [
          (mediaBelowMinimum.metric as cloudwatch.Metric).with({ label: 'in service', statistic: 'Average' }),
          (mediaAtCeiling.metric as cloudwatch.Metric).with({ label: 'desired', statistic: 'Average' }),
        ],
        right: [(mediaCpu.metric as cloudwatch.Metric).with({ label: 'CPU %' })],
        leftAnnotations: [
          { value: props.mediaMinHosts, label: 'min' },
          { value: props.mediaMaxHosts, label: 'max' },
        ],
        width: wide,
      }),
      new cloudwatch.GraphWidget({
        title: `Table ${props.tableName}: replication latency (ms) and throttles`,
        left: [replicationLatency.metric],
        right: [throttles.metric],
        width: wide,
      }),
    );
  }
}
