/**
 * The region's join canary: a CloudWatch Synthetics canary that every minute checks this region's
 * `/health`, joins a room through the region's own name, and joins through `api-backup` (the second way
 * in), signing its join token with this region's replica of the join-token key set. The script is
 * functions/join-canary.ts.
 *
 * It runs outside the VPC, on the public internet path a client takes, so a blackholed region's canary
 * still runs and reports the failure.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as synthetics from 'aws-cdk-lib/aws-synthetics';
import { Construct } from 'constructs';
import { CANARY_STEPS } from './functions/join-canary';
import { inlineFunctionSource } from './inline-code';

/** Canary names: lowercase letters, digits, - and _ (Synthetics). */
const CANARY_NAME = /^[0-9a-z_-]{1,255}$/;
const ARTIFACT_RETENTION = Duration.days(30);

export interface JoinCanaryProps {
  readonly canaryName: string;
  /** `https://<region>.api.<domain>` */
  readonly regionApiUrl: string;
  /** `https://api-backup.<backupDomain>` */
  readonly backupApiUrl: string;
  /** This region's replica of the join-token key set, by its full ARN. */
  readonly joinTokenKeys: secretsmanager.ISecret;
  /** Room the canary joins; one per region. */
  readonly roomId: string;
  /**
   * How often it runs.
   * @default Duration.minutes(1)
   */
  readonly interval?: Duration;
}

export class JoinCanary extends Construct {
  readonly canary: synthetics.Canary;
  /** Step names, as the `StepName` dimension of the per-step metrics. */
  readonly steps = CANARY_STEPS;

  constructor(scope: Construct, id: string, props: JoinCanaryProps) {
    super(scope, id);
    if (!CANARY_NAME.test(props.canaryName)) {
      throw new Error(
        `JoinCanary name "${props.canaryName}" is not a canary name; use lowercase letters, digits, - and _`,
      );
    }
    if (!props.joinTokenKeys.secretFullArn) {
      throw new Error('JoinCanary joinTokenKeys needs its full ARN (Secret.fromSecretCompleteArn)');
    }

    const artifacts = new s3.Bucket(this, 'Artifacts', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: ARTIFACT_RETENTION }],
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(artifacts).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        "S1 asks for S3 server access logs of this bucket. Its only writer is this region's canary role and " +
        'it holds run logs that expire after 30 days; logging requests to it would need another bucket with ' +
        'the same finding. Reads are auditable with CloudTrail S3 data events if an account needs that.',
    });

    this.canary = new synthetics.Canary(this, 'Resource', {
      canaryName: props.canaryName,
      runtime: synthetics.Runtime.SYNTHETICS_NODEJS_PUPPETEER_13_0,
      test: synthetics.Test.custom({
        code: synthetics.Code.fromInline(inlineFunctionSource('join-canary')),
        handler: 'index.handler',
      }),
      schedule: synthetics.Schedule.rate(props.interval ?? Duration.minutes(1)),
      timeout: Duration.seconds(50),
      artifactsBucketLocation: { bucket: artifacts, prefix: 'runs' },
      successRetentionPeriod: Duration.days(7),
      failureRetentionPeriod: Duration.days(30),
      startAfterCreation: true,
      provisionedResourceCleanup: true,
      environmentVariables: {
        REGION_API_URL: props.regionApiUrl,
        BACKUP_API_URL: props.backupApiUrl,
        CANARY_ROOM: props.roomId,
        CANARY_SUBJECT: `canary@${Stack.of(this).region}`,
        JOIN_TOKEN_KEYS_SECRET_ARN: props.joinTokenKeys.secretArn,
      },
    });
    props.joinTokenKeys.grantRead(this.canary.role);

    const stack = Stack.of(this);
    const artifactsId = stack.resolve((artifacts.node.defaultChild as s3.CfnBucket).logicalId);
    Validations.of(this.canary.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'The Synthetics runtime lists buckets (s3:ListAllMyBuckets) and publishes its metrics ' +
          '(cloudwatch:PutMetricData, limited to the CloudWatchSynthetics namespace by a condition); neither ' +
          'action supports resource-level permissions.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${artifactsId}.Arn>/runs/*]`,
        reason:
          "The canary writes one object per run under its own prefix of this region's artifacts bucket; the " +
          'object keys are generated per run.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:/aws/lambda/cwsyn-*]`,
        reason:
          "The canary's function, and so its log group, is named by Synthetics at creation (cwsyn-<name>-<id>); " +
          "the pattern is the service's own prefix in this region's account.",
      },
    );
  }
}
