/**
 * The one stack that knows every region: it owns the DynamoDB global table (a replica per region) and
 * the join-token signing secret (a replica per region). Region stacks find both by their fixed names in
 * their own region, so this stack exports nothing and no region stack depends on it at synth time.
 *
 * It lives in `tableOwnerRegion` (by default not us-east-1) because the CloudFormation stack that owns a
 * global table is the only place its replica set can be changed: losing that region would freeze the
 * replica list, never the data path.
 */
import { CfnOutput, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { TABLE_KEYS } from '../runtime/store/schema';

/** HS256 wants at least 32 bytes of key; 64 alphanumerics carry ~380 bits. */
const JOIN_TOKEN_SECRET_LENGTH = 64;

export interface TableStackProps extends StackProps {
  /** Physical name of the global table; region stacks reference it by this name. */
  readonly tableName: string;
  /** Name of the join-token signing secret; region stacks reference it by this name. */
  readonly secretName: string;
  /** Every region that serves traffic; each gets a table replica and a secret replica. */
  readonly regions: readonly string[];
}

export class TableStack extends Stack {
  readonly table: dynamodb.TableV2;
  readonly joinTokenSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: TableStackProps) {
    super(scope, id, props);
    const ownRegion = this.region;
    if (!props.regions.includes(ownRegion)) {
      throw new Error(
        `TableStack region "${ownRegion}" is not among the served regions (${props.regions.join(', ')}); ` +
          'deploy the table stack in one of them (config field tableOwnerRegion)',
      );
    }
    const otherRegions = props.regions.filter((r) => r !== ownRegion);
    const k = TABLE_KEYS;

    this.table = new dynamodb.TableV2(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: k.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: k.sortKey, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      timeToLiveAttribute: k.ttlAttribute,
      globalSecondaryIndexes: [
        {
          indexName: k.gsiName,
          partitionKey: { name: k.gsiPartitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: k.gsiSortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
      ],
      // Table-level settings apply to every replica; a replica removed from the config keeps its data
      // until the operator deletes it on purpose.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      replicas: otherRegions.map((region) => ({ region })),
    });

    this.joinTokenSecret = new secretsmanager.Secret(this, 'JoinTokenSecret', {
      secretName: props.secretName,
      description: 'HS256 key that app backends sign join tokens with and every region verifies them with',
      generateSecretString: { passwordLength: JOIN_TOKEN_SECRET_LENGTH, excludePunctuation: true },
      replicaRegions: otherRegions.map((region) => ({ region })),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.joinTokenSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The join-token key is shared with app backends that mint tokens; rotating it needs a key-id and ' +
        'overlap window in the token format, so it is rotated by operators (docs/DEPLOY.md), not by a Lambda.',
    });

    new CfnOutput(this, 'TableName', { value: props.tableName });
    new CfnOutput(this, 'SecretName', { value: props.secretName });
  }
}
