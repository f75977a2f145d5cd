/**
 * The layering rules in eslint.config.mjs refuse a wrong import, folder by folder (and let the right
 * ones through): the same check `npm run lint` runs on the tree, on deliberately wrong snippets.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '../..');

/**
 * ESLint's config is an ES module, which jest's module system cannot load: the cases are linted in one
 * plain Node process with ESLint's own API, and their `no-restricted-imports` messages read back.
 */
const LINT_CASES = `
const { ESLint } = require('eslint');
const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const eslint = new ESLint({ cwd: process.cwd() });
(async () => {
  const out = [];
  for (const [file, source] of cases) {
    const [result] = await eslint.lintText(source + '\\nexport {};\\n', { filePath: require('node:path').join(process.cwd(), file) });
    out.push(result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

const lint = (cases: Array<[string, string]>): string[][] => {
  const run = spawnSync(process.execPath, ['-e', LINT_CASES], {
    cwd: ROOT,
    input: JSON.stringify(cases),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`eslint failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as string[][];
};

const REFUSED: Array<[string, string, RegExp]> = [
  ['runtime/protocol/x.ts', "import { Store } from '../store';", /imports nothing of ours/],
  [
    'runtime/store/x.ts',
    "import { SIGNALING_CLOSE } from '../protocol/signaling';",
    /imports nothing of ours/,
  ],
  ['runtime/lb/x.ts', "import { Room } from '../media/Room';", /the LB builds on protocol and store only/],
  [
    'runtime/media/x.ts',
    "import { Placement } from '../lb/Placement';",
    /the media server builds on protocol/,
  ],
  [
    'runtime/media/x.ts',
    "import { parseDeploymentConfig } from '../../lib/config';",
    /never imports the CDK code/,
  ],
  ['runtime/local/x.ts', "import { App } from 'aws-cdk-lib';", /never imports the CDK code/],
  ['runtime/client/x.ts', "import * as fs from 'node:fs';", /browser-safe/],
  ['runtime/client/x.ts', "import { signJoinToken } from '../protocol/tokens';", /browser-safe/],
  ['runtime/client/x.ts', "import { Store } from '../store';", /builds on protocol only/],
  ['lib/x.ts', "import { buildApp } from '../runtime/lb/app';", /the CDK app takes the wire contracts/],
  ['lib/x.ts', "import { Store } from '../runtime/store/Store';", /the CDK app takes the wire contracts/],
  ['scripts/x.ts', "import { startDynalite } from '../test/support/dynalite';", /scripts never import tests/],
];

const ALLOWED: Array<[string, string]> = [
  [
    'runtime/lb/x.ts',
    "import { SIGNALING_CLOSE } from '../protocol/signaling';\nimport { Store } from '../store';",
  ],
  ['runtime/client/x.ts', "import { joinAnswerSchema } from '../protocol/join';"],
  ['runtime/client/nodePlatform.ts', "import * as http from 'node:http';"],
  [
    'lib/x.ts',
    "import { AWS_REGIONS } from '../runtime/protocol/regions';\nimport { TABLE_KEYS } from '../runtime/store/schema';",
  ],
];

let results: string[][];
beforeAll(() => {
  results = lint([...REFUSED.map(([file, source]) => [file, source] as [string, string]), ...ALLOWED]);
});

test.each(REFUSED.map((c, i) => [...c, i] as const))('%s: %s is refused', (_file, _source, message, i) => {
  expect(results[i]).toHaveLength(1);
  expect(results[i]![0]).toMatch(message);
});

test.each(ALLOWED.map((c, i) => [...c, REFUSED.length + i] as const))(
  '%s: the layering allows %s',
  (_file, _source, i) => {
    expect(results[i]).toEqual([]);
  },
);
