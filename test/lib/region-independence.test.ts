/**
 * The invariant the multi-region design rests on: a region stack knows only its own region. Removing
 * (or adding) a region changes the table stack's replica lists and nothing else, and no template
 * reaches another region through exports, SSM cross-region references or hard-coded names. The table
 * stack stays in its configured region whatever the list looks like.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCdkApp, refusePlaceholderDeployment, regionStackProps } from '../../lib/app';
import { parseAwsDeploymentConfig } from '../../lib/config';
import { placeholderFindings } from '../../lib/placeholders';
import { RegionStack } from '../../lib/region-stack';
import { AWS_REGIONS } from '../../runtime/protocol/regions';
import {
  frozenSourceCopy,
  type Json,
  resourcesOfType,
  synthProject,
  type SynthesizedProject,
  TEST_ACCOUNT,
} from './support/synth';

const ALL = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];
const SURVIVORS = ['eu-west-1', 'ap-southeast-1'];
const OWNER = 'eu-west-1' as const;

let full: SynthesizedProject;
let withoutUsEast1: SynthesizedProject;
let withAnotherRegion: SynthesizedProject;
let withoutApSoutheast1: SynthesizedProject;
let source: ReturnType<typeof frozenSourceCopy>;

beforeAll(() => {
  source = frozenSourceCopy();
  const options = { sourceDirectory: source.directory };
  full = synthProject({ tableOwnerRegion: OWNER, regions: ALL }, options);
  withoutUsEast1 = synthProject({ tableOwnerRegion: OWNER, regions: SURVIVORS }, options);
  // Another region added, and the list reordered: neither may matter to the others.
  withAnotherRegion = synthProject(
    { tableOwnerRegion: OWNER, regions: ['ap-southeast-1', 'eu-central-1', 'eu-west-1', 'us-east-1'] },
    options,
  );
  withoutApSoutheast1 = synthProject(
    { tableOwnerRegion: OWNER, regions: ['us-east-1', 'eu-west-1'] },
    options,
  );
});
afterAll(() => {
  for (const p of [full, withoutUsEast1, withAnotherRegion, withoutApSoutheast1]) p.dispose();
  source.dispose();
});

describe('the table stack never moves', () => {
  it('stays in tableOwnerRegion when regions are reordered, added or removed', () => {
    for (const project of [full, withoutUsEast1, withAnotherRegion, withoutApSoutheast1]) {
      expect(project.stacks.tableStack.region).toBe(OWNER);
      expect(project.assembly.getStackByName('mrwebrtc-table').environment.region).toBe(OWNER);
    }
  });

  it('orders every region stack after it, in the assembly only', () => {
    for (const region of ALL) {
      const artifact = full.assembly.getStackByName(`mrwebrtc-${region}`);
      const stackDeps = artifact.dependencies.map((d) => d.id).filter((id) => !id.endsWith('.assets'));
      expect(stackDeps).toEqual(['mrwebrtc-table']);
    }
    expect(
      full.assembly.getStackByName('mrwebrtc-table').dependencies.filter((d) => !d.id.endsWith('.assets')),
    ).toEqual([]);
  });

  it.each(ALL)('leaves the %s template exactly as a region stack built alone writes it', (region) => {
    // The same region stack in an app of its own: no table stack, no dependency.
    const config = parseAwsDeploymentConfig({ tableOwnerRegion: OWNER, regions: ALL });
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-alone-'));
    try {
      const app = createCdkApp({ outdir });
      const alone = new RegionStack(
        app,
        `mrwebrtc-${region}`,
        regionStackProps(
          config,
          config.regions.find((r) => r.name === region)!,
          {
            account: TEST_ACCOUNT,
            sourceDirectory: source.directory,
          },
        ),
      );
      refusePlaceholderDeployment(alone, placeholderFindings(config, TEST_ACCOUNT));
      const assembly = app.synth();
      const text = fs.readFileSync(assembly.getStackByName(`mrwebrtc-${region}`).templateFullPath, 'utf8');
      expect(text).toBe(full.templateText(`mrwebrtc-${region}`));
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('every region template', () => {
  it.each(ALL)('%s has the boot signal, the alarms, one canary and one FIS experiment template', (region) => {
    const template = full.template(`mrwebrtc-${region}`);
    // The media fleet and the TURN relay, each booting with a signal.
    const asg = Object.values(resourcesOfType(template, 'AWS::AutoScaling::AutoScalingGroup'));
    expect(asg).toHaveLength(2);
    for (const group of asg) {
      expect(group.CreationPolicy.ResourceSignal.Count).toBeGreaterThan(0);
      expect(group.UpdatePolicy.AutoScalingRollingUpdate.WaitOnResourceSignals).toBe(true);
    }
    expect(Object.keys(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).length).toBeGreaterThanOrEqual(
      14,
    );
    expect(Object.keys(resourcesOfType(template, 'AWS::Synthetics::Canary'))).toHaveLength(1);
    expect(Object.keys(resourcesOfType(template, 'AWS::FIS::ExperimentTemplate'))).toHaveLength(1);
    expect(Object.keys(resourcesOfType(template, 'AWS::CloudWatch::Dashboard'))).toHaveLength(1);
  });
});

/** Every value in a JSON tree, with the path that leads to it. */
function* walk(node: Json, path: string[] = []): Generator<[string[], Json]> {
  yield [path, node];
  if (node !== null && typeof node === 'object') {
    for (const [key, child] of Object.entries(node)) yield* walk(child, [...path, key]);
  }
}

function assetsManifest(project: SynthesizedProject, stackName: string): string {
  const artifact = project.assembly.getStackByName(stackName);
  const assets = artifact.dependencies.find((d) => d.id === `${stackName}.assets`);
  expect(assets).toBeDefined();
  return fs.readFileSync(`${project.assembly.directory}/${stackName}.assets.json`, 'utf8');
}

function otherRegions(own: string): string[] {
  return AWS_REGIONS.filter((r) => r !== own);
}

describe('region independence', () => {
  it.each(SURVIVORS)('leaves the %s template byte-identical when us-east-1 is removed', (region) => {
    const name = `mrwebrtc-${region}`;
    expect(withoutUsEast1.templateText(name)).toBe(full.templateText(name));
    expect(assetsManifest(withoutUsEast1, name)).toBe(assetsManifest(full, name));
  });

  it.each(SURVIVORS)(
    'leaves the %s template byte-identical when a region is added and the list reordered',
    (region) => {
      const name = `mrwebrtc-${region}`;
      expect(withAnotherRegion.templateText(name)).toBe(full.templateText(name));
      expect(assetsManifest(withAnotherRegion, name)).toBe(assetsManifest(full, name));
    },
  );

  it.each(['us-east-1', 'eu-west-1'])(
    'leaves the %s template byte-identical when ap-southeast-1 is removed',
    (region) => {
      const name = `mrwebrtc-${region}`;
      expect(withoutApSoutheast1.templateText(name)).toBe(full.templateText(name));
    },
  );

  it('changes only the replica lists of the table stack', () => {
    const strip = (t: Json) => {
      const copy = structuredClone(t);
      for (const resource of Object.values(copy.Resources as Record<string, Json>)) {
        delete resource.Properties?.Replicas;
        delete resource.Properties?.ReplicaRegions;
      }
      return copy;
    };
    const before = full.template('mrwebrtc-table');
    const after = withoutUsEast1.template('mrwebrtc-table');
    expect(strip(after)).toEqual(strip(before));
    expect(after).not.toEqual(before);
    expect(withoutUsEast1.stacks.tableStack.region).toBe(full.stacks.tableStack.region);
  });

  it('no longer deploys anything for a removed region', () => {
    expect(() => withoutUsEast1.assembly.getStackByName('mrwebrtc-us-east-1')).toThrow();
    const table = withoutUsEast1.template('mrwebrtc-table');
    expect(JSON.stringify(table)).not.toContain('us-east-1');
  });
});

describe('no cross-region references', () => {
  const stackNames = ['mrwebrtc-table', ...ALL.map((r) => `mrwebrtc-${r}`)];

  it.each(stackNames)('%s has no Fn::ImportValue, export, or SSM cross-region reference', (name) => {
    const template = full.template(name);
    for (const [path, value] of walk(template)) {
      expect(path).not.toContain('Fn::ImportValue');
      expect(path).not.toContain('Export');
      if (typeof value === 'string') {
        expect(value).not.toMatch(/\/cdk\/exports|CrossRegion/i);
      }
    }
    const types = Object.values(template.Resources as Record<string, Json>).map((r) => r.Type as string);
    expect(types.filter((t) => /CrossRegion|SSM::Parameter|CloudFormation::Stack$/.test(t))).toEqual([]);
  });

  it.each(ALL)('mrwebrtc-%s names no other region and depends on no other region stack', (region) => {
    const name = `mrwebrtc-${region}`;
    const text = full.templateText(name);
    for (const other of otherRegions(region)) expect(text).not.toContain(other);
    expect(text).toContain(region);
    expect(text).not.toContain('mrwebrtc-table');
    expect(assetsManifest(full, name)).not.toMatch(new RegExp(otherRegions(region).join('|')));
    const stackDependencies = full.assembly
      .getStackByName(name)
      .dependencies.map((d) => d.id)
      .filter((id) => stackNames.includes(id));
    // Deploy order after the table stack (manifest only, see above); never another region.
    expect(stackDependencies).toEqual(['mrwebrtc-table']);
  });

  it('names other regions in the table stack only in its replica lists', () => {
    const own = full.stacks.tableStack.region;
    for (const [path, value] of walk(full.template('mrwebrtc-table'))) {
      if (typeof value !== 'string' || !otherRegions(own).includes(value)) continue;
      expect(path).toEqual(expect.arrayContaining([expect.stringMatching(/^(Replicas|ReplicaRegions)$/)]));
      expect(path[path.length - 1]).toBe('Region');
    }
  });
});
