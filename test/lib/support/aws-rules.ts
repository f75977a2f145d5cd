/**
 * Documented AWS rules, as executable checks over synthesized templates. Each names the documentation
 * it comes from; the tests assert the rule (what AWS accepts), not today's value.
 */
import type { Json } from './synth';

/**
 * ECS task definition `secrets[].valueFrom` (AWS::ECS::TaskDefinition Secret, CloudFormation reference):
 * "The supported values are either the full ARN of the Secrets Manager secret or the full ARN of the
 * parameter in the SSM Parameter Store"; only an SSM parameter of the task's own region may be given by
 * name. A Secrets Manager secret's full ARN ends in "-" and six random characters.
 */
export function secretsManagerFullArnPattern(region: string, account: string): RegExp {
  return new RegExp(
    `^arn:aws[a-z-]*:secretsmanager:${region}:${account}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`,
  );
}

/**
 * Secrets Manager user guide, "Replicate secrets across Regions": "The ARN for a replicated secret is
 * the same as the primary secret except for the Region". DescribeSecret answers the ARN of the secret
 * in the Region it is called in. This fakes that answer with a fixed suffix.
 */
export function describeSecretArn(call: { region: string; account: string; secretId: string }): string {
  return `arn:aws:secretsmanager:${call.region}:${call.account}:secret:${call.secretId}-Ab3dE9`;
}

/**
 * The deploy-time value of a template expression, where every input is known: plain strings, and
 * `Fn::GetAtt` of an AwsCustomResource (`Custom::*` with a recorded SDK call) whose call this module
 * knows how to answer. Anything else throws, so a test cannot pass on a value it did not understand.
 */
export function deployTimeValue(template: Record<string, Json>, node: Json, account: string): string {
  if (typeof node === 'string') return node;
  const getAtt = node?.['Fn::GetAtt'];
  if (Array.isArray(getAtt)) {
    const [logicalId, attribute] = getAtt as [string, string];
    const resource = template.Resources[logicalId];
    if (!resource || !String(resource.Type).startsWith('Custom::')) {
      throw new Error(`cannot evaluate Fn::GetAtt of ${logicalId} (${resource?.Type})`);
    }
    const create = JSON.parse(resource.Properties.Create);
    if (create.service === 'SecretsManager' && create.action === 'DescribeSecret' && attribute === 'ARN') {
      if (!create.outputPaths?.includes('ARN')) throw new Error(`${logicalId} does not return ARN`);
      return describeSecretArn({ region: create.region, account, secretId: create.parameters.SecretId });
    }
    throw new Error(`no fake for ${create.service}.${create.action} (${logicalId})`);
  }
  throw new Error(`cannot evaluate ${JSON.stringify(node)}`);
}

/** IAM's resource matching: `*` any run of characters, `?` exactly one (IAM JSON policy reference). */
export function iamResourceMatches(pattern: string, arn: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(arn);
}

/**
 * IAM condition `ForAllValues:StringLike` (IAM user guide, multivalued context keys): true when every
 * value in the request matches at least one pattern, and also true when the request has no value at
 * all, which is why a `Null: false` check must accompany it.
 */
export function forAllValuesStringLike(
  patterns: readonly string[],
  requestValues: readonly string[] | undefined,
): boolean {
  if (requestValues === undefined || requestValues.length === 0) return true;
  return requestValues.every((v) => patterns.some((p) => iamResourceMatches(p, v)));
}

/** IAM condition `Null: { key: "false" }`: true when the request carries the key. */
export function nullFalse(requestValues: readonly string[] | undefined): boolean {
  return requestValues !== undefined && requestValues.length > 0;
}
