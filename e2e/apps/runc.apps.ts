/**
 * Real servers from Debian's packages, in runc bundles built from the packages as shipped (bundle.js), moved from h1
 * to h2 with `ferry migrate --strategy auto` while their own load tool drives them from the LAN (trial.js). For each:
 * the move succeeds with the stock configuration, the load tool saw no connection reset or error, and the
 * application's own checks find every acknowledged write. Each row goes to the matrix (FERRY_APPS_RESULTS).
 * FERRY_APPS=redis,nginx runs a subset.
 */
import { SANDBOX_DIR, SANDBOX_NAME, sandbox } from '../lib/sandbox';

// Plain JavaScript, shared with the benchmark (bench/).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { moveApp } = require('./trial');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { APPS } = require('./catalog');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { sandboxNamed } = require('./sandbox-access');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { recordRow } = require('./matrix');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { installCriuShim } = require('./lab/criu-shim');

// A first run builds each application's rootfs (minutes; cached in /var/cache/ferry/apps afterwards).
jest.setTimeout(20 * 60_000);

const names: string[] = (process.env.FERRY_APPS ?? Object.keys(APPS).join(',')).split(',').filter(Boolean);

const sb = sandboxNamed(SANDBOX_NAME, SANDBOX_DIR);
let shim: { installed: boolean; reason: string };
beforeAll(() => {
  sandbox('up');
  shim = installCriuShim(sb);
  process.stderr.write(`CRIU rlimit shim: ${shim.installed ? 'installed' : 'not needed'} (${shim.reason})\n`);
});
afterAll(() => {
  sandbox('down');
});

test.each(names.map((n, i) => [n, i]))('%s moves under its own load: no reset, every acknowledged write present', async (name, index) => {
  const row = await moveApp(sb, name as string, {
    address: `10.77.0.${50 + (index as number)}/24`,
    log: (line: string) => process.stderr.write(`${line}\n`),
  });
  recordRow({ ...row, criuShim: shim.installed });
  if (row.error) throw new Error(`ferry migrate ${name}: ${row.error.code}: ${row.error.message}\nhint: ${row.error.hint}`);
  expect(row.result).toBe('ok');
  expect(row.dataIntact).toBe(true);
  expect(row.strategy).toBeTruthy();
});
