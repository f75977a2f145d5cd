/**
 * The one stack that knows every region: it owns the DynamoDB global table (a replica per region), the
 * two token key sets and the TURN relays' shared secret (a replica per region each). Region stacks find
 * all four by their fixed names in their own region, so this stack exports nothing and no region stack
 * references it.
 *
 * It lives in `tableOwnerRegion`, named explicitly in the config, because the CloudFormation stack that
 * owns a global table is the only place its replica set can be changed, and a stack that moved region
 * would try to create a table and secrets that already exist. Losing that region freezes the replica
 * list, never the data path.
 */
import { CfnOutput, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { TABLE_KEYS } from '../runtime/store/schema';

/**
 * Key length of the generated keys: HS256 wants at least 32 bytes of key; 64 letters and digits carry
 * about 380 bits.
 */
const GENERATED_KEY_LENGTH = 64;
/** Key id of the generated first key; rotation adds k2, k3, ... (docs/DEPLOY.md). */
export const INITIAL_KEY_ID = 'k1';

export interface TableStackProps extends StackProps {
  /** Physical name of the global table; region stacks reference it by this name. */
  readonly tableName: string;
  /** Name of the join-token key set (app backends sign, LBs verify); region stacks use it by name. */
  readonly joinTokenKeysSecretName: string;
  /** Name of the media-token key set (LBs sign, media servers verify); region stacks use it by name. */
  readonly mediaTokenKeysSecretName: string;
  /** Name of the TURN shared secret (LBs sign TURN credentials, relays check them); used by name. */
  readonly turnSecretName: string;
  /** Every region that serves traffic; each gets a table replica and a replica of each key set. */
  readonly regions: readonly string[];
}

export class TableStack extends Stack {
  readonly table: dynamodb.TableV2;
  readonly joinTokenKeys: secretsmanager.Secret;
  readonly mediaTokenKeys: secretsmanager.Secret;
  readonly turnSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: TableStackProps) {
    super(scope, id, props);
    const ownRegion = this.region;
    if (!props.regions.includes(ownRegion)) {
      throw new Error(
        `TableStack region "${ownRegion}" is not among the served regions (${props.regions.join(', ')}); ` +
          'deploy the table stack in one of them (config field tableOwnerRegion)',
      );
    }
    if (props.joinTokenKeysSecretName === props.mediaTokenKeysSecretName) {
      throw new Error(
        `TableStack key sets share the name "${props.joinTokenKeysSecretName}"; the join and media keys ` +
          'must be two secrets so that a media host never holds the join keys',
      );
    }
    if ([props.joinTokenKeysSecretName, props.mediaTokenKeysSecretName].includes(props.turnSecretName)) {
      throw new Error(
        `TableStack turnSecretName "${props.turnSecretName}" is also a token key set's name; the TURN ` +
          'secret must be a secret of its own so that a relay host never holds token keys',
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

    this.joinTokenKeys = this.keySet('JoinTokenKeys', {
      secretName: props.joinTokenKeysSecretName,
      description:
        'Join-token key set: app backends sign join tokens with the current key, LBs verify with it and ' +
        'the "verify" keys',
      otherRegions,
    });
    this.mediaTokenKeys = this.keySet('MediaTokenKeys', {
      secretName: props.mediaTokenKeysSecretName,
      description:
        'Media-token key set: LBs sign media tokens with the current key, media servers verify with it ' +
        'and the "verify" keys',
      otherRegions,
    });
    // The key sets' document shape, so it rotates the same way: the next secret goes under "verify" and
    // the relays restart (they read it at start and accept every secret listed), then it becomes current
    // for the LBs, and the old one leaves once the longest credential it signed has expired.
    this.turnSecret = this.keySet('TurnSecret', {
      secretName: props.turnSecretName,
      description:
        'TURN shared secret: LBs sign time-limited TURN credentials with the current secret, the TURN ' +
        'relays accept it and the "verify" secrets',
      otherRegions,
    });

    new CfnOutput(this, 'TableName', { value: props.tableName });
    new CfnOutput(this, 'JoinTokenKeysSecretName', { value: props.joinTokenKeysSecretName });
    new CfnOutput(this, 'MediaTokenKeysSecretName', { value: props.mediaTokenKeysSecretName });
    new CfnOutput(this, 'TurnSecretName', { value: props.turnSecretName });
  }

  /**
   * A key set: `{"kid":"k1","secret":"<64 letters and digits>"}` generated by Secrets Manager (never in
   * the template), replicated to every other region, kept when the stack goes. Operators add
   * `"verify": [...]` and new keys when they rotate (docs/DEPLOY.md).
   */
  private keySet(
    id: string,
    opts: { secretName: string; description: string; otherRegions: readonly string[] },
  ): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, id, {
      secretName: opts.secretName,
      description: opts.description,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ kid: INITIAL_KEY_ID }),
        generateStringKey: 'secret',
        passwordLength: GENERATED_KEY_LENGTH,
        excludePunctuation: true,
        includeSpace: false,
      },
      replicaRegions: opts.otherRegions.map((region) => ({ region })),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A rotation must add the new key to every verifier before any signer uses it (key ids and the ' +
        '"verify" list make that possible), and signers include app backends outside this stack, so ' +
        'operators rotate in that order (docs/DEPLOY.md); a Secrets Manager rotation Lambda would swap ' +
        'the key in one step.',
    });
    return secret;
  }
}
