/**
 * This region's replica of a secret that another stack owns, by its full ARN, resolved at deploy time.
 *
 * ECS reads a container secret's `valueFrom` as a Secrets Manager secret only when it is the secret's
 * full ARN; anything else (a name, or the partial ARN `Secret.fromSecretNameV2` knows) is taken for an
 * SSM parameter name and the task fails to start (ResourceInitializationError). The full ARN ends in a
 * random suffix that only Secrets Manager knows, and the region stacks must not reference the table
 * stack, so the ARN is asked for in this stack's own region: a custom resource calls DescribeSecret by
 * name, which answers with the ARN of the replica in the region it is called in. Nothing here names
 * another region or stack.
 *
 * The lookup runs on create and whenever the name changes. A secret deleted and re-created under the
 * same name gets a new suffix: redeploy with a changed name, or replace this resource, to pick it up.
 */
import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface RegionalSecretProps {
  /** Name of the secret; the replica in this stack's region is the one used. */
  readonly secretName: string;
}

export class RegionalSecret extends Construct {
  /** Full ARN of this region's replica (a deploy-time value). */
  readonly secretArn: string;
  readonly secretName: string;
  /** The replica, imported by its full ARN: grants name exactly this ARN, ECS accepts it as `valueFrom`. */
  readonly secret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: RegionalSecretProps) {
    super(scope, id);
    if (!/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(props.secretName)) {
      throw new Error(
        `RegionalSecret name "${props.secretName}" is not a Secrets Manager secret name; ` +
          'use 1-512 letters, digits and /_+=.@-',
      );
    }
    const stack = Stack.of(this);
    this.secretName = props.secretName;

    const describe: cr.AwsSdkCall = {
      service: 'SecretsManager',
      action: 'DescribeSecret',
      parameters: { SecretId: props.secretName },
      // Explicit, so the template shows which region answers (the ARN's region is this one).
      region: stack.region,
      physicalResourceId: cr.PhysicalResourceId.fromResponse('ARN'),
      outputPaths: ['ARN'],
    };
    const lookup = new cr.AwsCustomResource(this, 'Resource', {
      resourceType: 'Custom::RegionalSecretArn',
      onCreate: describe,
      onUpdate: describe,
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({
        // Secrets Manager appends "-" and six random characters to the name.
        resources: [
          stack.formatArn({
            service: 'secretsmanager',
            resource: 'secret',
            resourceName: `${props.secretName}-??????`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
      // The Lambda runtime's SDK is enough for DescribeSecret; installing one at deploy time would make
      // every deploy depend on the npm registry.
      installLatestAwsSdk: false,
      logGroup: customResourceLogs(stack),
    });
    this.secretArn = lookup.getResponseField('ARN');
    this.secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Replica', this.secretArn);

    acknowledgeProviderFunction(stack);
  }

  /** Grants reading the secret's value (GetSecretValue, DescribeSecret on this replica's ARN). */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.secret.grantRead(grantee);
  }
}

/** One log group per stack for the shared custom-resource function: bounded retention, gone with the stack. */
function customResourceLogs(stack: Stack): logs.ILogGroup {
  const id = 'CustomResourceLogs';
  return (
    (stack.node.tryFindChild(id) as logs.ILogGroup | undefined) ??
    new logs.LogGroup(stack, id, {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    })
  );
}

const acknowledged = new WeakSet<Stack>();

/** The provider function AwsCustomResource shares across a stack (a singleton with a fixed id). */
function acknowledgeProviderFunction(stack: Stack): void {
  if (acknowledged.has(stack)) return;
  acknowledged.add(stack);
  const role = stack.node
    .tryFindChild('AWS679f53fac002430cb0da5b7982bd2287')
    ?.node.tryFindChild('ServiceRole');
  if (role) {
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        "AwsCustomResource's provider function writes only its own logs with this AWS managed policy; its " +
        'API permissions are the per-call statements scoped to one secret each.',
    });
  }
}
