/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // isolatedModules keeps per-file transpilation fast; `npm run build` (tsc) is the type check.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    // Node 20 requires these ESM-only packages natively, jest's module system cannot: transpile them
    // (jose: tokens; cookie: light-my-request, i.e. fastify's inject()).
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
