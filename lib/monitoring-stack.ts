/**
 * Optional stack in us-east-1 with alarms on the regions' Route 53 health checks. Route 53 publishes
 * health-check metrics (`AWS/Route53`, `HealthCheckStatus`) in us-east-1 only, so these alarms cannot
 * live in the region stacks, and putting them here must not make anything depend on us-east-1: no stack
 * references this one, it references none (the health check ids come from the config, copied from the
 * region stacks' `HealthCheckId` outputs), and losing us-east-1 loses these alarms and nothing else. The
 * region stacks' own alarms (region-monitoring.ts) cover each region from inside it.
 */
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';

/** The only region where Route 53 health-check metrics exist. */
export const ROUTE53_METRICS_REGION = 'us-east-1';
const MINUTE = Duration.minutes(1);

export interface MonitoringStackProps extends StackProps {
  readonly appName: string;
  /** Route 53 health check id per region (the region stacks' `HealthCheckId` outputs). */
  readonly healthCheckIds: Readonly<Record<string, string>>;
  /** Addresses subscribed to this stack's alarm topic. */
  readonly alarmEmails: readonly string[];
}

export class MonitoringStack extends Stack {
  readonly regionUnhealthy: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, props);
    if (this.region !== ROUTE53_METRICS_REGION) {
      throw new Error(
        `MonitoringStack is in ${this.region}; Route 53 health-check metrics exist only in ` +
          `${ROUTE53_METRICS_REGION}, so deploy it there`,
      );
    }
    const regions = Object.keys(props.healthCheckIds).sort();
    if (regions.length === 0) {
      throw new Error('MonitoringStack has no health check ids; set monitoring.healthCheckIds in the config');
    }
    const action = new actions.SnsAction(
      new AlarmTopic(this, 'Alarms', {
        displayName: `${props.appName} Route 53 health checks`,
        emails: props.alarmEmails,
      }).topic,
    );

    const status = (region: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/Route53',
        metricName: 'HealthCheckStatus',
        dimensionsMap: { HealthCheckId: props.healthCheckIds[region]! },
        statistic: 'Minimum',
        period: MINUTE,
      });

    const unhealthy: Record<string, cloudwatch.Alarm> = {};
    for (const region of regions) {
      const alarm = status(region).createAlarm(this, `Unhealthy-${region}`, {
        alarmName: `${props.appName}-${region}-Route53HealthCheck`,
        alarmDescription:
          `Route 53's health check of ${region} fails: the region is out of api and api-backup. ` +
          "See the region's own RegionImpaired alarm and dashboard in that region.",
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      unhealthy[region] = alarm;
    }
    this.regionUnhealthy = unhealthy;

    // Losing one region is what the design absorbs; losing a second at the same time is an incident of
    // another size.
    const ids = regions.map((_, i) => `r${i}`);
    const down = new cloudwatch.MathExpression({
      expression: ids.map((id) => `(1 - FILL(${id}, 0))`).join(' + '),
      usingMetrics: Object.fromEntries(regions.map((region, i) => [ids[i]!, status(region)])),
      period: MINUTE,
      label: 'regions failing their health check',
    });
    if (regions.length > 1) {
      const several = down.createAlarm(this, 'SeveralRegionsUnhealthy', {
        alarmName: `${props.appName}-SeveralRegionsUnhealthy`,
        alarmDescription: 'Two or more regions fail their Route 53 health check at the same time.',
        threshold: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      several.addAlarmAction(action);
      several.addOkAction(action);
    }

    new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${props.appName}-route53-health`,
      widgets: [
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Route 53 health checks',
            alarms: Object.values(unhealthy),
            width: 24,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'HealthCheckStatus (1 healthy, 0 unhealthy)',
            left: regions.map((region) => status(region).with({ label: region })),
            leftYAxis: { min: 0, max: 1 },
            width: 24,
          }),
        ],
      ],
    });
  }
}
