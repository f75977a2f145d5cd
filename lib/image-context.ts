/**
 * A container image's build context, and with it the image's asset hash, is what its Dockerfile COPYs
 * from the context, plus the Dockerfile itself. The COPY lines are the one list of an image's inputs:
 * `cdk deploy` stages only those paths (the asset's `exclude`), so editing the CDK code, the demo, the
 * local emulators or the client SDK changes no image hash and redeploys no region.
 *
 * The list is checked against what the image runs: test/lib/image-context.test.ts bundles each image's
 * entry with esbuild and fails when the bundle reads a file its Dockerfile does not COPY, or when a COPY
 * brings in nothing the image uses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IgnoreMode } from 'aws-cdk-lib';

/** Asset options that narrow a Docker image asset's context to its Dockerfile's COPY sources. */
export interface ImageAssetContext {
  readonly exclude: string[];
  readonly ignoreMode: IgnoreMode;
}

/**
 * Paths (files or folders, relative to the context, sorted) that the Dockerfile COPYs from its build
 * context. COPYs from another stage (`--from`) read no context and are skipped. Throws on what cannot be
 * read as a plain path list (globs, variables, heredocs, ADD) and on a source the context lacks.
 */
export function dockerfileCopySources(directory: string, file: string): string[] {
  const dockerfile = path.join(directory, file);
  const sources = new Set<string>();
  for (const { lineNumber, text } of instructions(fs.readFileSync(dockerfile, 'utf8'))) {
    const [keyword, ...words] = text.split(/\s+/);
    const where = `${file}:${lineNumber}`;
    if (/^ADD$/i.test(keyword)) {
      throw new Error(
        `${where}: ADD is not supported here; use COPY so the image's context can be read from it`,
      );
    }
    if (!/^COPY$/i.test(keyword)) continue;
    // Flags (--from, --chown, --chmod, --link, ...) come before the operands.
    const firstOperand = words.findIndex((w) => !w.startsWith('--'));
    const flags = firstOperand === -1 ? words : words.slice(0, firstOperand);
    if (flags.some((f) => /^--from(=|$)/.test(f))) continue;
    const operands = copyOperands(words.slice(flags.length).join(' '), where);
    for (const source of operands.slice(0, -1)) sources.add(contextPath(source, where));
  }
  for (const source of sources) {
    if (!fs.existsSync(path.join(directory, source))) {
      throw new Error(
        `${file} COPYs "${source}", which is not in its build context ${directory}; ` +
          'fix the COPY line (was the file moved or renamed?)',
      );
    }
  }
  return [...sources].sort();
}

/**
 * Asset options (for `DockerImageAsset` or `ContainerImage.fromAsset`) whose context is exactly the
 * Dockerfile's COPY sources and the Dockerfile. CDK applies them after the context's `.dockerignore`
 * (Docker's rules: the last matching pattern wins), and always keeps `.dockerignore` itself.
 */
export function imageAssetContext(directory: string, file: string): ImageAssetContext {
  const sources = dockerfileCopySources(directory, file);
  return {
    exclude: ['*', ...sources.map((s) => `!${s}`), `!${path.posix.normalize(file)}`],
    ignoreMode: IgnoreMode.DOCKER,
  };
}

/** Logical instructions: continuation lines joined, comments and blank lines dropped (Docker's rules). */
function instructions(text: string): { lineNumber: number; text: string }[] {
  const result: { lineNumber: number; text: string }[] = [];
  let pending: { lineNumber: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && !pending)) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1).trim() : line;
    pending = pending
      ? { ...pending, text: `${pending.text} ${body}` }
      : { lineNumber: index + 1, text: body };
    if (!continued) {
      result.push(pending);
      pending = undefined;
    }
  });
  if (pending) result.push(pending);
  return result;
}

/** `COPY a b dest/` or `COPY ["a", "b", "dest/"]`: sources then destination. */
function copyOperands(rest: string, where: string): string[] {
  if (rest.startsWith('<<')) {
    throw new Error(`${where}: COPY with a heredoc is not supported here; COPY files of the context`);
  }
  let operands: unknown;
  if (rest.startsWith('[')) {
    try {
      operands = JSON.parse(rest);
    } catch {
      throw new Error(`${where}: COPY ${rest} is not a valid JSON array of strings`);
    }
  } else {
    operands = rest.split(' ').filter((w) => w !== '');
  }
  if (!Array.isArray(operands) || operands.length < 2 || operands.some((o) => typeof o !== 'string')) {
    throw new Error(`${where}: COPY ${rest} needs at least one source and a destination`);
  }
  return operands as string[];
}

/** A COPY source as a plain path inside the context, or an error that says why it cannot be one. */
function contextPath(source: string, where: string): string {
  if (/[*?[\]$]/.test(source)) {
    throw new Error(
      `${where}: COPY source "${source}" has a wildcard or variable; name the files or folders ` +
        "explicitly so the image's context can be read from the COPY lines",
    );
  }
  const normalized = path.posix.normalize(source).replace(/\/+$/, '');
  if (path.posix.isAbsolute(normalized) || normalized === '..' || normalized.startsWith('../')) {
    throw new Error(`${where}: COPY source "${source}" is outside the build context`);
  }
  if (normalized === '.' || normalized === '') {
    throw new Error(
      `${where}: COPY source "${source}" is the whole context; COPY what the image needs so that ` +
        'editing anything else does not change its hash',
    );
  }
  return normalized;
}
