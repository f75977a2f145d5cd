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
  type AwsDeploymentConfig,
  type DeploymentConfigInput,
  parseAwsDeploymentConfig,
} from '../../../lib/config';
import { placeholderFindings } from '../../../lib/placeholders';

export const TEST_ACCOUNT = '123456789012';

/** The smallest AWS config: the repository's defaults plus the table owner every AWS config must name. */
export const DEFAULT_AWS_INPUT: DeploymentConfigInput = { tableOwnerRegion: 'eu-west-1' };

/** A node of a synthesized CloudFormation template: untyped JSON that tests walk freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface SynthesizedProject {
  readonly app: App;
  readonly config: AwsDeploymentConfig;
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
  /** Where the images' Dockerfiles and COPY sources are read from; default: the repository itself. */
  readonly sourceDirectory?: string;
}

/**
 * Synthesizes as `npm run synth` does: placeholder values (the docs' domains, the test account) are
 * allowed and every template carries the rule that refuses them at deploy time.
 */
export function synthProject(
  input: DeploymentConfigInput = DEFAULT_AWS_INPUT,
  options: SynthOptions = {},
): SynthesizedProject {
  const config = parseAwsDeploymentConfig(input);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-cdk-'));
  const app = createCdkApp({ outdir });
  const stacks = buildStacks(app, config, {
    account: TEST_ACCOUNT,
    sourceDirectory: options.sourceDirectory,
    placeholders: placeholderFindings(config, TEST_ACCOUNT),
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

/** Never an image's input (lib/image-context.ts), and large: not worth copying. */
const NOT_CONTEXT = new Set(['node_modules', '.git', 'cdk.out', '.local', 'coverage', 'bench-results']);

/**
 * A frozen copy of the repository for the images' build context. Comparing templates byte for byte
 * across several syntheses needs asset hashes that cannot move because someone saved a file under
 * runtime/ in between. The copy holds the same files as the repository, so the hashes are the same;
 * tests may edit it to see which edits move them.
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
