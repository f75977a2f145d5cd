/**
 * Change detector: a diff here means the deployed resources change, so review it (and update with
 * `npx jest test/lib/snapshot.test.ts -u`). The behaviour is asserted in the other files of this folder.
 *
 * Image tags are real asset hashes, not masked: an image's hash moves only when a file its Dockerfile
 * COPYs moves (lib/image-context.ts), and that rebuilds the image and redeploys it in every region, which
 * is worth a review. The tests below hold that: edits to the CDK code, the demo, the local emulators or
 * the client SDK leave both hashes alone, and an edit to a file an image bundles moves that image's hash
 * and only that one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LB_DOCKERFILE, MEDIA_DOCKERFILE } from '../../lib/region-stack';
import {
  bundledSources,
  dockerfileEntry,
  filesUnder,
  IMAGES,
  INSTALL_INPUTS,
  stagedImages,
} from './support/images';
import { DEFAULT_AWS_INPUT, frozenSourceCopy, synthProject, type SynthesizedProject } from './support/synth';

const REGION_STACK = 'mrwebrtc-eu-west-1';

let source: ReturnType<typeof frozenSourceCopy>;
let project: SynthesizedProject;
beforeAll(() => {
  // Synthesized from a frozen copy (same files, same hashes) that the tests below then edit.
  source = frozenSourceCopy();
  project = synthProject(DEFAULT_AWS_INPUT, { sourceDirectory: source.directory });
});
afterAll(() => {
  project.dispose();
  source.dispose();
});

it.each(['mrwebrtc-table', REGION_STACK])('%s template', (name) => {
  expect(JSON.parse(project.templateText(name))).toMatchSnapshot();
});

describe('image hashes', () => {
  /** Both images' hashes after synthesizing the (edited) copy; one region is enough for them. */
  function hashesNow(): Record<string, string> {
    const edited = synthProject(
      { ...DEFAULT_AWS_INPUT, regions: ['eu-west-1'] },
      { sourceDirectory: source.directory },
    );
    try {
      const images = stagedImages(edited, REGION_STACK);
      return Object.fromEntries(IMAGES.map(({ dockerfile }) => [dockerfile, images[dockerfile]!.hash]));
    } finally {
      edited.dispose();
    }
  }
  const edit = (file: string) => fs.appendFileSync(path.join(source.directory, file), '\n// edited\n');

  let before: Record<string, string>;
  beforeAll(() => {
    const images = stagedImages(project, REGION_STACK);
    before = Object.fromEntries(IMAGES.map(({ dockerfile }) => [dockerfile, images[dockerfile]!.hash]));
  });

  // In order: each test edits the copy further and compares with the hashes before its own edit.
  it('stay byte-identical when the CDK code, the demo, the local emulators or the SDK change', async () => {
    const bundled = new Set(
      (await Promise.all(IMAGES.map(({ dockerfile }) => bundledSources(dockerfileEntry(dockerfile))))).flat(),
    );
    // Every file outside runtime/ and the install inputs, and all of the SDK, the demo and the local
    // emulators, except what an image bundles (a lib/ file the LB still imports is an image input).
    const areas = fs
      .readdirSync(source.directory)
      .filter((entry) => entry !== 'runtime' && entry !== '.dockerignore' && !INSTALL_INPUTS.includes(entry));
    const edits = [...areas, 'runtime/client', 'runtime/local']
      .flatMap((area) => filesUnder(source.directory, area))
      .filter((file) => !bundled.has(file));
    for (const required of ['lib/region-stack.ts', 'runtime/client/demo', 'runtime/local/']) {
      expect(edits.some((file) => file.startsWith(required))).toBe(true);
    }
    edits.forEach(edit);
    expect(hashesNow()).toEqual(before);
  }, 60_000);

  it('move the LB hash, and only it, when a file the LB bundles changes', () => {
    edit(dockerfileEntry(LB_DOCKERFILE));
    const after = hashesNow();
    expect(after[LB_DOCKERFILE]).not.toBe(before[LB_DOCKERFILE]);
    expect(after[MEDIA_DOCKERFILE]).toBe(before[MEDIA_DOCKERFILE]);
    before = after;
  }, 60_000);

  it('move the media hash, and only it, when a file the media server bundles changes', () => {
    edit(dockerfileEntry(MEDIA_DOCKERFILE));
    const after = hashesNow();
    expect(after[MEDIA_DOCKERFILE]).not.toBe(before[MEDIA_DOCKERFILE]);
    expect(after[LB_DOCKERFILE]).toBe(before[LB_DOCKERFILE]);
  }, 60_000);
});
