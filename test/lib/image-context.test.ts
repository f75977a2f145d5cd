/**
 * Each image's build context is what its Dockerfile COPYs (lib/image-context.ts), so the COPY lines must
 * be exactly what the image runs: every source file its entry bundles is COPYed (or the build fails),
 * and every COPY brings in something it bundles (or edits there rebuild and redeploy the image for
 * nothing). The CDK code, the demo and the local emulators are never an image's input.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, IgnoreStrategy, Stack } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { dockerfileCopySources, imageAssetContext } from '../../lib/image-context';
import {
  bundledSources,
  dockerfileEntry,
  filesUnder,
  IMAGES,
  INSTALL_INPUTS,
  REPO_ROOT,
} from './support/images';

const inside = (file: string, source: string) => file === source || file.startsWith(`${source}/`);

describe.each(IMAGES)('the $name image ($dockerfile)', ({ dockerfile }) => {
  const entry = dockerfileEntry(dockerfile);
  const copied = dockerfileCopySources(REPO_ROOT, dockerfile);
  let bundled: string[];
  beforeAll(async () => {
    bundled = await bundledSources(entry);
  }, 60_000);

  it('bundles its entry from sources inside the repository', () => {
    expect(bundled).toContain(entry);
    expect(bundled.filter((file) => file.startsWith('..') || path.isAbsolute(file))).toEqual([]);
  });

  it('COPYs every source file its entry bundles', () => {
    const missing = bundled.filter((file) => !copied.some((source) => inside(file, source)));
    if (missing.length > 0) {
      throw new Error(
        `${entry} bundles ${missing.join(', ')}, which ${dockerfile} does not COPY, so its build would ` +
          `fail; add a COPY line (for example "COPY ${missing[0]} ./${path.posix.dirname(missing[0]!)}/")`,
      );
    }
  });

  it('COPYs nothing its entry does not use', () => {
    const unused = copied.filter(
      (source) => !INSTALL_INPUTS.includes(source) && !bundled.some((file) => inside(file, source)),
    );
    if (unused.length > 0) {
      throw new Error(
        `${dockerfile} COPYs ${unused.join(', ')}, but ${entry} bundles nothing from it; remove the COPY ` +
          'so that edits there stop changing the image hash (and redeploying every region)',
      );
    }
    expect(copied).toEqual(expect.arrayContaining(INSTALL_INPUTS));
  });

  it('COPYs whole folders only from runtime/, and none of the client SDK, demo or local emulators', () => {
    const folders = copied.filter((source) => fs.statSync(path.join(REPO_ROOT, source)).isDirectory());
    expect(
      folders.filter((f) => !f.startsWith('runtime/') || /^runtime\/(client|local)(\/|$)/.test(f)),
    ).toEqual([]);
    expect(copied.filter((source) => /^runtime\/(client|local)(\/|$)/.test(source))).toEqual([]);
  });

  it("is let in by the root .dockerignore, which Docker applies to CDK's staged context too", () => {
    const patterns = fs.readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    const ignore = IgnoreStrategy.docker(REPO_ROOT, patterns);
    const files = copied.flatMap((source) => filesUnder(REPO_ROOT, source));
    expect(files.filter((file) => ignore.ignores(path.join(REPO_ROOT, file)))).toEqual([]);
  });

  it('stages exactly its COPY sources, its Dockerfile and .dockerignore as its build context', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-image-'));
    try {
      const app = new App({ outdir });
      const asset = new ecrAssets.DockerImageAsset(new Stack(app, 'Images'), 'Image', {
        directory: REPO_ROOT,
        file: dockerfile,
        ...imageAssetContext(REPO_ROOT, dockerfile),
      });
      // CDK stages (copies) an asset's context when the asset is created; no synthesis needed.
      const staged = filesUnder(path.join(outdir, `asset.${asset.assetHash}`), '.');
      const expected = new Set([
        '.dockerignore',
        dockerfile,
        ...copied.flatMap((s) => filesUnder(REPO_ROOT, s)),
      ]);
      expect(staged.map((f) => path.posix.normalize(f))).toEqual([...expected].sort());
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('dockerfileCopySources', () => {
  let context: string;
  beforeEach(() => {
    context = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-context-'));
    for (const file of ['package.json', 'a/one.ts', 'a/two.ts', 'b/three.ts']) {
      fs.mkdirSync(path.dirname(path.join(context, file)), { recursive: true });
      fs.writeFileSync(path.join(context, file), '');
    }
  });
  afterEach(() => fs.rmSync(context, { recursive: true, force: true }));
  const sourcesOf = (dockerfile: string) => {
    fs.writeFileSync(path.join(context, 'Dockerfile'), dockerfile);
    return dockerfileCopySources(context, 'Dockerfile');
  };

  it('reads the sources of every COPY from the context, and none from another stage', () => {
    const dockerfile = [
      '# syntax=docker/dockerfile:1',
      'FROM node:22 AS build',
      'COPY package.json ./',
      'copy --chown=node:node a/one.ts \\',
      '  # a comment inside a continuation',
      '  ./a/two.ts ./a/',
      'COPY ["b/three.ts", "./b/"]',
      'FROM node:22',
      'COPY --from=build /app/dist ./dist',
      'COPY --link --from build /app/other ./other',
    ].join('\n');
    expect(sourcesOf(dockerfile)).toEqual(['a/one.ts', 'a/two.ts', 'b/three.ts', 'package.json']);
  });

  it('throws, naming the Dockerfile and the path, when a COPY source is not in the context', () => {
    expect(() => sourcesOf('FROM node:22\nCOPY a ./a\nCOPY runtime/moved.ts ./runtime/\n')).toThrow(
      /Dockerfile COPYs "runtime\/moved\.ts", which is not in its build context .*fix the COPY line/,
    );
  });

  it.each([
    ['a wildcard', 'COPY a/*.ts ./a/', /wildcard or variable/],
    ['a variable', 'COPY ${SRC} ./a/', /wildcard or variable/],
    ['the whole context', 'COPY . .', /whole context/],
    ['a path outside the context', 'COPY ../secrets ./', /outside the build context/],
    ['ADD', 'ADD a ./a', /ADD is not supported/],
    ['a heredoc', 'COPY <<EOF /x\nhi\nEOF', /heredoc/],
    ['no destination', 'COPY a', /at least one source and a destination/],
  ])('refuses %s, naming the line', (_what, line, message) => {
    expect(() => sourcesOf(`FROM node:22\n${line}\n`)).toThrow(message);
    expect(() => sourcesOf(`FROM node:22\n${line}\n`)).toThrow(/^Dockerfile:2: /);
  });

  it('lets in exactly the COPY sources and the Dockerfile', () => {
    fs.writeFileSync(path.join(context, 'Dockerfile'), 'FROM node:22\nCOPY package.json ./\nCOPY a ./a\n');
    expect(imageAssetContext(context, 'Dockerfile').exclude).toEqual([
      '*',
      '!a',
      '!package.json',
      '!Dockerfile',
    ]);
  });
});
