/**
 * Change detector only: a diff here means the deployed resources change, so review it (and update with
 * `npx jest test/lib/snapshot.test.ts -u`). The behaviour is asserted in the other files of this folder.
 */
import { synthProject, type SynthesizedProject } from './support/synth';

let project: SynthesizedProject;
beforeAll(() => {
  project = synthProject();
});
afterAll(() => project.dispose());

/** Asset hashes change with every source edit under runtime/; they are not what this detects. */
function masked(text: string): unknown {
  return JSON.parse(text.replace(/\b[0-9a-f]{64}\b/g, '<asset-hash>'));
}

it.each(['mrwebrtc-table', 'mrwebrtc-eu-west-1'])('%s template', (name) => {
  expect(masked(project.templateText(name))).toMatchSnapshot();
});
