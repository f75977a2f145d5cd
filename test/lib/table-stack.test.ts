import { Match, Template } from 'aws-cdk-lib/assertions';
import { TABLE_KEYS } from '../../runtime/store/schema';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildStacks, createCdkApp, FEATURE_FLAGS } from '../../lib/app';
import { parseAwsDeploymentConfig } from '../../lib/config';
import { INITIAL_KEY_ID } from '../../lib/table-stack';
import { type Json, resourcesOfType, synthProject, type SynthesizedProject } from './support/synth';

describe('table stack (default config)', () => {
  let project: SynthesizedProject;
  let raw: Record<string, Json>;
  let template: Template;

  beforeAll(() => {
    project = synthProject();
    raw = project.template('mrwebrtc-table');
    template = Template.fromJSON(raw);
  });
  afterAll(() => project.dispose());

  it('lives in the configured tableOwnerRegion', () => {
    expect(project.stacks.tableStack.region).toBe('eu-west-1');
    expect(project.assembly.getStackByName('mrwebrtc-table').environment.region).toBe('eu-west-1');
  });

  it("is a global table with the store's keys, GSI, TTL and on-demand billing", () => {
    const k = TABLE_KEYS;
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: 'mrwebrtc-rooms',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: k.partitionKey, KeyType: 'HASH' },
        { AttributeName: k.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: k.gsiName,
          KeySchema: [
            { AttributeName: k.gsiPartitionKey, KeyType: 'HASH' },
            { AttributeName: k.gsiSortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      TimeToLiveSpecification: { AttributeName: k.ttlAttribute, Enabled: true },
      StreamSpecification: Match.anyValue(),
    });
  });

  it('has a replica in every configured region, each with PITR and deletion protection', () => {
    const table = Object.values(resourcesOfType(raw, 'AWS::DynamoDB::GlobalTable'))[0];
    const replicas: Json[] = table.Properties.Replicas;
    expect(replicas.map((r) => r.Region).sort()).toEqual(['ap-southeast-1', 'eu-west-1', 'us-east-1']);
    for (const replica of replicas) {
      expect(replica.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(replica.DeletionProtectionEnabled).toBe(true);
    }
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  it('keeps the generated key sets and TURN secret under their fixed names, replicated to every other region and retained', () => {
    const secrets = Object.values(resourcesOfType(raw, 'AWS::SecretsManager::Secret'));
    expect(secrets.map((s) => s.Properties.Name).sort()).toEqual([
      'mrwebrtc/join-token-keys',
      'mrwebrtc/media-token-keys',
      'mrwebrtc/turn-secret',
    ]);
    for (const secret of secrets) {
      // Secrets Manager generates the value: the template holds the shape, never a key.
      expect(secret.Properties.SecretString).toBeUndefined();
      const generate = secret.Properties.GenerateSecretString;
      expect(JSON.parse(generate.SecretStringTemplate)).toEqual({ kid: INITIAL_KEY_ID });
      expect(generate.GenerateStringKey).toBe('secret');
      // Letters and digits, at least 32 bytes: an HS256 key.
      expect(generate.PasswordLength).toBeGreaterThanOrEqual(32);
      expect(generate.ExcludePunctuation).toBe(true);
      expect(generate.IncludeSpace ?? false).toBe(false);
      expect(secret.Properties.ReplicaRegions.map((r: Json) => r.Region).sort()).toEqual([
        'ap-southeast-1',
        'us-east-1',
      ]);
      expect(secret.DeletionPolicy).toBe('Retain');
      expect(secret.UpdateReplacePolicy).toBe('Retain');
    }
    // The generated key id follows the key set format (1-64 of [A-Za-z0-9._-]).
    expect(INITIAL_KEY_ID).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });
});

describe('table stack (explicit owner)', () => {
  it('follows tableOwnerRegion and still replicates everywhere', () => {
    const project = synthProject({ regions: ['eu-west-1', 'us-west-2'], tableOwnerRegion: 'us-west-2' });
    // (us-east-1 may own it too; the docs advise against it, nothing forbids it.)
    try {
      expect(project.stacks.tableStack.region).toBe('us-west-2');
      const table = Object.values(
        resourcesOfType(project.template('mrwebrtc-table'), 'AWS::DynamoDB::GlobalTable'),
      )[0];
      expect(table.Properties.Replicas.map((r: Json) => r.Region).sort()).toEqual(['eu-west-1', 'us-west-2']);
    } finally {
      project.dispose();
    }
  });
});

describe('feature flags', () => {
  it('leaves out @aws-cdk/aws-dynamodb:retainTableReplica, which changes nothing for a TableV2', () => {
    const flag = '@aws-cdk/aws-dynamodb:retainTableReplica';
    expect(Object.keys(FEATURE_FLAGS)).not.toContain(flag);
    const texts = [{ [flag]: true }, {}].map((context) => {
      const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-flag-'));
      try {
        const app = createCdkApp({ outdir, context });
        buildStacks(
          app,
          parseAwsDeploymentConfig({ tableOwnerRegion: 'eu-west-1', regions: ['eu-west-1'] }),
          {
            account: '210987654321',
          },
        );
        const assembly = app.synth();
        return fs.readFileSync(assembly.getStackByName('mrwebrtc-table').templateFullPath, 'utf8');
      } finally {
        fs.rmSync(outdir, { recursive: true, force: true });
      }
    });
    expect(texts[0]).toBe(texts[1]);
  });
});
