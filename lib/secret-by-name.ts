/**
 * A container secret that ECS resolves by the secret's name in the task's own region.
 *
 * A secret imported by name (`Secret.fromSecretNameV2`) only knows a partial ARN, without the random
 * suffix Secrets Manager appends, and ECS fails to start tasks whose `valueFrom` is such a partial ARN
 * (AccessDenied, aws/aws-cdk#18555). By name, ECS looks the secret up in its own region and IAM checks the
 * full ARN, which the `<name>-??????` grant matches. Importing by name is what keeps region stacks free of
 * any reference to the table stack, so the name is the right handle here.
 */
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';

export class SecretByName extends ecs.Secret {
  override readonly arn: string;
  override readonly hasField = false;

  constructor(private readonly secret: secretsmanager.ISecret) {
    super();
    this.arn = secret.secretName;
  }

  override grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.secret.grantRead(grantee);
  }
}
