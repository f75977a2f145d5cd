// Tests run on Node 20 (the legacy media engine's); the AWS SDK's notice that its 2027 releases need
// Node 22 is about production images, which already run 22, and would repeat in every suite's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** @type {import('jest').Config} */
module.exports = {
  // jest's Node environment inside a machine-wide lock: timing suites run alone (test/support/suiteLock.ts).
  testEnvironment: '<rootDir>/test/support/suiteLockEnvironment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type-checked (tsconfig.jest.json turns isolatedModules off): a type error fails the run.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
    // Node 20 requires these ESM-only packages natively, jest's module system cannot: transpile them
    // (jose: the tests' independent token minter; cookie: light-my-request, i.e. fastify's inject()).
    '/node_modules/(jose|cookie)/.+\\.js$': [
      'ts-jest',
      { tsconfig: { allowJs: true, isolatedModules: true, module: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|cookie)/)'],
  // Suites start real processes (dynalite, mediasoup workers, LBs); two cores cannot run many at once.
  maxWorkers: 2,
  testTimeout: 30_000,
};
