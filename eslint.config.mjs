import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layering (DESIGN.md "Layout"), enforced rather than written down: `protocol` and `store` import
 * nothing of ours; `lb`, `media` and `client` build on `protocol` (and `store` for the services) and
 * never on each other; nothing in `runtime/` imports the CDK code or CDK itself; `lib/` takes only the
 * wire contracts and the table's shape from `runtime/`; the browser-safe client imports nothing
 * Node-only; `scripts/` never imports tests. test/scripts/eslint-layering.test.ts shows each rule
 * refusing a wrong import.
 */
const NODE_ONLY = [
  'node:*',
  'ws',
  'pino',
  'fastify',
  '@fastify/*',
  'fast-jwt',
  '@aws-sdk/*',
  'mediasoup',
  'mediasoup-legacy',
  // Wire-contract modules that use node:crypto or read a process environment.
  '**/protocol/tokens',
  '**/protocol/environment',
  '**/protocol/*Environment',
  '**/protocol/turnRelayPolicy',
];
const CDK = ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdk-nag', '**/lib/*', '**/lib'];

/** One `no-restricted-imports` rule from groups of forbidden patterns, each with why. */
function forbid(...groups) {
  return {
    'no-restricted-imports': ['error', { patterns: groups.map(([group, message]) => ({ group, message })) }],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.local/', 'coverage/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['runtime/**/*.ts'],
    rules: forbid([
      CDK,
      'runtime/ never imports the CDK code (lib/) or CDK: the CDK app builds on runtime, not the reverse',
    ]),
  },
  {
    files: ['runtime/protocol/**/*.ts'],
    rules: forbid(
      [
        ['../*', '../**'],
        'runtime/protocol imports nothing of ours: every side imports it, so it depends on no side',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['runtime/store/**/*.ts'],
    rules: forbid(
      [
        ['../*', '../**'],
        'runtime/store imports nothing of ours: the LB, the media servers and the CDK table share it',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['runtime/lb/**/*.ts'],
    rules: forbid(
      [
        ['**/media/*', '**/client/*', '**/local/*', '**/media', '**/client', '**/local'],
        'the LB builds on protocol and store only',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['runtime/media/**/*.ts'],
    rules: forbid(
      [
        ['**/lb/*', '**/client/*', '**/local/*', '**/lb', '**/client', '**/local'],
        'the media server builds on protocol and store only',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['runtime/client/**/*.ts'],
    ignores: ['runtime/client/nodePlatform.ts', 'runtime/client/node.ts', 'runtime/client/DnsResolver.ts'],
    rules: forbid(
      [
        ['**/lb/*', '**/media/*', '**/store/*', '**/local/*', '**/lb', '**/media', '**/store', '**/local'],
        'the client SDK builds on protocol only: apps ship it without the services',
      ],
      [
        NODE_ONLY,
        'the client SDK is browser-safe: Node-only code lives in nodePlatform.ts, node.ts and DnsResolver.ts',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['runtime/client/nodePlatform.ts', 'runtime/client/node.ts', 'runtime/client/DnsResolver.ts'],
    rules: forbid(
      [
        ['**/lb/*', '**/media/*', '**/store/*', '**/local/*', '**/lb', '**/media', '**/store', '**/local'],
        'the client SDK builds on protocol only: apps ship it without the services',
      ],
      [CDK, 'runtime/ never imports the CDK code (lib/) or CDK'],
    ),
  },
  {
    files: ['lib/**/*.ts', 'bin/**/*.ts'],
    rules: forbid([
      [
        '**/runtime/lb/**',
        '**/runtime/media/**',
        '**/runtime/client/**',
        '**/runtime/local/**',
        '**/runtime/store/*',
        '!**/runtime/store/schema',
      ],
      'the CDK app takes the wire contracts (runtime/protocol) and the table shape (runtime/store/schema) only',
    ]),
  },
  {
    files: ['scripts/**/*.ts'],
    rules: forbid([
      ['**/test/**', '**/test'],
      'scripts never import tests: a test helper scripts need belongs under scripts/support',
    ]),
  },
);
