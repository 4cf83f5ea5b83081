// The two-VM suite (npm run test:vm): its own config, so `npx jest` (scripts/test.sh) never boots VMs by accident.
const base = require('../jest.config.js').projects[0];
module.exports = {
  rootDir: require('node:path').resolve(__dirname, '..'),
  transform: base.transform,
  moduleNameMapper: base.moduleNameMapper,
  testEnvironment: 'node',
  displayName: 'vm',
  testMatch: ['<rootDir>/e2e-vm/**/*.test.ts'],
  // One pair of VMs at a time on a shared machine.
  maxWorkers: 1,
};
