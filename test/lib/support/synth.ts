/**
 * Synthesizes the whole project the way bin/app.ts does (same feature flags, same stacks, cdk-nag on)
 * from a config input, into a temporary cloud assembly. Synthesis runs every validation plugin, so
 * any unacknowledged cdk-nag finding makes it throw.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildStacks, createCdkApp, type ProjectStacks } from '../../../lib/app';
import {
  type DeploymentConfig,
  type DeploymentConfigInput,
  parseDeploymentConfig,
} from '../../../lib/config';

export const TEST_ACCOUNT = '123456789012';

/** A node of a synthesized CloudFormation template: untyped JSON that tests walk freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface SynthesizedProject {
  readonly app: App;
  readonly config: DeploymentConfig;
  readonly stacks: ProjectStacks;
  readonly assembly: CloudAssembly;
  /** Parsed template of a stack, by stack name. */
  template(stackName: string): Record<string, Json>;
  /** The template file exactly as written to disk. */
  templateText(stackName: string): string;
  /** Deletes the temporary assembly directory. */
  dispose(): void;
}

export interface SynthOptions {
  /** Docker build context of the images; default: the repository itself. */
  readonly sourceDirectory?: string;
}

export function synthProject(
  input: DeploymentConfigInput = {},
  options: SynthOptions = {},
): SynthesizedProject {
  const config = parseDeploymentConfig(input);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-cdk-'));
  const app = createCdkApp({ outdir });
  const stacks = buildStacks(app, config, {
    account: TEST_ACCOUNT,
    sourceDirectory: options.sourceDirectory,
  });
  const assembly = app.synth();
  const templateText = (name: string) =>
    fs.readFileSync(assembly.getStackByName(name).templateFullPath, 'utf8');
  return {
    app,
    config,
    stacks,
    assembly,
    template: (name) => JSON.parse(templateText(name)) as Record<string, Json>,
    templateText,
    dispose: () => fs.rmSync(outdir, { recursive: true, force: true }),
  };
}

/** Resources of one CloudFormation type, keyed by logical id. */
export function resourcesOfType(template: Record<string, Json>, type: string): Record<string, Json> {
  return Object.fromEntries(
    Object.entries(template.Resources ?? {}).filter(([, r]) => (r as Json).Type === type),
  );
}

/** Never part of the images' build context (.dockerignore), and large: not worth copying. */
const NOT_CONTEXT = new Set(['node_modules', '.git', 'cdk.out', '.local', 'coverage']);

/**
 * A frozen copy of the repository for the images' build context. Comparing templates byte for byte
 * across several syntheses needs asset hashes that cannot move because someone saved a file under
 * runtime/ in between. The copy keeps .dockerignore, so the same files count.
 */
export function frozenSourceCopy(): { directory: string; dispose(): void } {
  const root = path.resolve(__dirname, '..', '..', '..');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-src-'));
  for (const entry of fs.readdirSync(root)) {
    if (NOT_CONTEXT.has(entry)) continue;
    fs.cpSync(path.join(root, entry), path.join(directory, entry), { recursive: true });
  }
  return { directory, dispose: () => fs.rmSync(directory, { recursive: true, force: true }) };
}
