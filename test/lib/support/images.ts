/**
 * The two container images as the tests see them: their Dockerfiles, the entry each one bundles, the
 * source files that bundle reads (esbuild's metafile, with the Dockerfile's own options), and their
 * asset hashes in a synthesized region stack.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { LB_DOCKERFILE, MEDIA_DOCKERFILE } from '../../../lib/region-stack';
import type { SynthesizedProject } from './synth';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export const IMAGES = [
  { name: 'LB', dockerfile: LB_DOCKERFILE },
  { name: 'media', dockerfile: MEDIA_DOCKERFILE },
] as const;

/**
 * Files an image's build stage reads besides the bundle's sources: `npm ci` reads the package files,
 * esbuild reads tsconfig.json (class field semantics follow its `target`).
 */
export const INSTALL_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json'];

/** The entry the Dockerfile's build stage hands to esbuild (`RUN npx esbuild <entry> ...`). */
export function dockerfileEntry(dockerfile: string, root = REPO_ROOT): string {
  const text = fs.readFileSync(path.join(root, dockerfile), 'utf8');
  const match = /^RUN\s+npx\s+esbuild\s+(\S+\.ts)\s/m.exec(text);
  if (!match)
    throw new Error(`${dockerfile} has no "RUN npx esbuild <entry>.ts ..." line to read the entry from`);
  return match[1]!;
}

/** Source files (relative to `root`, sorted) that bundling `entry` as the Dockerfiles do reads. */
export async function bundledSources(entry: string, root = REPO_ROOT): Promise<string[]> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node22',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return Object.keys(result.metafile.inputs).sort();
}

/** Every file under `relative` (a file or a folder of `root`), relative to `root`. */
export function filesUnder(root: string, relative: string): string[] {
  const full = path.join(root, relative);
  if (!fs.statSync(full).isDirectory()) return [relative];
  return fs
    .readdirSync(full, { recursive: true, encoding: 'utf8' })
    .map((entry) => path.posix.join(relative, entry.split(path.sep).join('/')))
    .filter((entry) => fs.statSync(path.join(root, entry)).isFile())
    .sort();
}

export interface StagedImage {
  /** The asset hash: the image's tag, and what a deploy compares. */
  readonly hash: string;
  /** The build context as CDK staged it for `docker build`. */
  readonly stagedDirectory: string;
}

/** A region stack's images from its asset manifest, by Dockerfile path. */
export function stagedImages(project: SynthesizedProject, stackName: string): Record<string, StagedImage> {
  const manifestPath = path.join(project.assembly.directory, `${stackName}.assets.json`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as {
    dockerImages: Record<string, { source: { directory: string; dockerFile: string } }>;
  };
  const images: Record<string, StagedImage> = {};
  for (const [hash, { source }] of Object.entries(manifest.dockerImages)) {
    images[source.dockerFile] = {
      hash,
      stagedDirectory: path.join(project.assembly.directory, source.directory),
    };
  }
  return images;
}
