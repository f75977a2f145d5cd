import { Match, Template } from 'aws-cdk-lib/assertions';
import { TABLE_KEYS } from '../../runtime/store/schema';
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

  it('lives in a region other than us-east-1 by default', () => {
    const region = project.stacks.tableStack.region;
    expect(region).not.toBe('us-east-1');
    expect(region).toBe('eu-west-1');
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

  it('keeps the join-token secret under its fixed name, replicated to every other region', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'mrwebrtc/join-token-secret',
      GenerateSecretString: Match.objectLike({ PasswordLength: Match.anyValue() }),
    });
    const secret = Object.values(resourcesOfType(raw, 'AWS::SecretsManager::Secret'))[0];
    expect(secret.Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
    expect(secret.Properties.ReplicaRegions.map((r: Json) => r.Region).sort()).toEqual([
      'ap-southeast-1',
      'us-east-1',
    ]);
    expect(secret.DeletionPolicy).toBe('Retain');
  });
});

describe('table stack (explicit owner)', () => {
  it('follows tableOwnerRegion and still replicates everywhere', () => {
    const project = synthProject({ regions: ['eu-west-1', 'us-west-2'], tableOwnerRegion: 'us-west-2' });
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
