/**
 * Where a stack's alarms go: an SNS topic encrypted with a key of its own. CloudWatch cannot publish to a
 * topic encrypted with the AWS managed SNS key, so the key is a customer managed one whose policy lets
 * CloudWatch (of this account only) use it.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlarmTopicProps {
  /** Shown as the sender of email notifications. */
  readonly displayName: string;
  /**
   * Addresses subscribed to the topic (each confirms by email once).
   * @default - none: subscribe operators or a pager integration yourself
   */
  readonly emails?: readonly string[];
}

export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    const account = Stack.of(this).account;
    const key = new kms.Key(this, 'Key', {
      description: `${props.displayName}: encrypts the alarm topic`,
      enableKeyRotation: true,
      // Nothing but notifications in flight is encrypted with it.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Resource', {
      displayName: props.displayName,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
    );
    for (const email of props.emails ?? []) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
  }
}
