/**
 * The invariant the multi-region design rests on: a region stack knows only its own region. Removing
 * (or adding) a region changes the table stack's replica lists and nothing else, and no template
 * reaches another region through exports, SSM cross-region references or hard-coded names.
 */
import * as fs from 'node:fs';
import { AWS_REGIONS } from '../../lib/regions';
import { frozenSourceCopy, type Json, synthProject, type SynthesizedProject } from './support/synth';

const ALL = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];
const SURVIVORS = ['eu-west-1', 'ap-southeast-1'];

let full: SynthesizedProject;
let withoutUsEast1: SynthesizedProject;
let withAnotherRegion: SynthesizedProject;
let source: ReturnType<typeof frozenSourceCopy>;

beforeAll(() => {
  source = frozenSourceCopy();
  const options = { sourceDirectory: source.directory };
  full = synthProject({ regions: ALL }, options);
  withoutUsEast1 = synthProject({ regions: SURVIVORS }, options);
  // Another region added, and the list reordered: neither may matter to the others.
  withAnotherRegion = synthProject(
    { regions: ['ap-southeast-1', 'eu-central-1', 'eu-west-1', 'us-east-1'] },
    options,
  );
});
afterAll(() => {
  for (const p of [full, withoutUsEast1, withAnotherRegion]) p.dispose();
  source.dispose();
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

  it.each(ALL)('mrwebrtc-%s names no other region and depends on no other stack', (region) => {
    const name = `mrwebrtc-${region}`;
    const text = full.templateText(name);
    for (const other of otherRegions(region)) expect(text).not.toContain(other);
    expect(text).toContain(region);
    expect(assetsManifest(full, name)).not.toMatch(new RegExp(otherRegions(region).join('|')));
    const stackDependencies = full.assembly
      .getStackByName(name)
      .dependencies.map((d) => d.id)
      .filter((id) => stackNames.includes(id));
    expect(stackDependencies).toEqual([]);
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
