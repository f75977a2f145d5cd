/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // isolatedModules keeps per-file transpilation fast; `npm run build` (tsc) is the type check.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  // Suites start real processes (dynalite, mediasoup workers, LBs); two cores cannot run many at once.
  maxWorkers: 2,
  testTimeout: 30_000,
};
