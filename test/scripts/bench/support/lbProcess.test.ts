import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageNodeFlags } from '../../../../scripts/bench/support/lbProcess';

const DOCKERFILE = path.resolve(__dirname, '../../../../runtime/lb/Dockerfile');

describe('imageNodeFlags', () => {
  it("reads the LB image's node flags, heap sizes included, from its CMD", () => {
    const flags = imageNodeFlags(fs.readFileSync(DOCKERFILE, 'utf8'));
    expect(flags).toContain('--enable-source-maps');
    // Without them the bench's LB would size its heap from the bench machine's memory, not the task's.
    expect(flags).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^--max-old-space-size=\d+$/),
        expect.stringMatching(/^--max-semi-space-size=\d+$/),
      ]),
    );
  });

  it('takes the last CMD, as Docker does', () => {
    const dockerfile = [
      'FROM node:22 AS build',
      'CMD ["node", "build.js"]',
      'FROM node:22',
      'CMD ["node", "--max-old-space-size=128", "dist/lb/server.js"]',
    ].join('\n');
    expect(imageNodeFlags(dockerfile)).toEqual(['--max-old-space-size=128']);
  });

  it('refuses a CMD the bench cannot run as the image does', () => {
    expect(() => imageNodeFlags('FROM node:22\n')).toThrow(/found no CMD/);
    expect(() => imageNodeFlags('CMD node --max-old-space-size=128 dist/lb/server.js')).toThrow(
      /exec-form CMD/,
    );
    expect(() => imageNodeFlags('CMD ["node", "dist/media/server.js"]')).toThrow(/dist\/lb\/server\.js/);
    expect(() => imageNodeFlags('CMD ["tini", "node", "dist/lb/server.js"]')).toThrow(/found "CMD \["tini"/);
  });
});
