// Three projects: unit tests run anywhere; integration tests (*.int.test.ts, e2e/) need root and the
// provisioned host (real CRIU, runc, sshd); the application matrix (e2e/apps/*.apps.ts) needs that and Debian's archive. Both transform TypeScript with swc; `tsc -b` type-checks.
const transform = { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const moduleNameMapper = {
  '^@ferry/(native|core|migrate|cli)$': '<rootDir>/packages/$1/src/index.ts',
  '^@ferry/(native|core|migrate|cli)/testing$': '<rootDir>/packages/$1/src/testing.ts',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', rootDir: __dirname };

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/packages/*/src/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/dist/', '/node_modules/'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/packages/*/src/**/*.int.test.ts', '<rootDir>/e2e/**/*.test.ts'],
      testPathIgnorePatterns: ['/dist/', '/node_modules/'],
    },
    {
      // Real applications from Debian's packages (npm run test:apps, docs/compatibility.md): minutes each, root.
      ...common,
      displayName: 'apps',
      testMatch: ['<rootDir>/e2e/apps/**/*.apps.ts'],
    },
  ],
};
