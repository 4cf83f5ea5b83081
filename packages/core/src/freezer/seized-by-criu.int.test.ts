/**
 * seizedByCriu against a real lazy dump (root, CRIU): false while the workload runs, true once CRIU holds every task
 * (with --freeze-cgroup, as runc dumps: the freezer then reads THAWED), false again once CRIU is gone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lazyDump, removeTestDir, runCleanups, startNetnsWorkload, waitFor, type Cleanup } from '../testing';
import { Freezer } from './freezer';
import { seizedByCriu } from './tasks-running';

jest.setTimeout(120_000);

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-seized-int-'))));
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

test('a cgroup is seized while a lazy dump holds its tasks, with the freezer thawed, and not before or after', async () => {
  const workload = await startNetnsWorkload({ dir, memMib: 16 });
  cleanups.push(() => workload.stop());
  expect(seizedByCriu(workload.freezerPath)).toBe(false);

  const src = await lazyDump(workload, { dir, criuArgs: ['--freeze-cgroup', workload.freezerPath] });
  cleanups.push(() => src.stop());
  await src.ready;
  expect(Freezer.at(workload.freezerPath).state()).toBe('thawed');
  expect(seizedByCriu(workload.freezerPath)).toBe(true);

  process.kill(src.dump.pid!, 'SIGKILL');
  await src.dumpExited;
  await waitFor('CRIU to let go of the tasks', () => !seizedByCriu(workload.freezerPath));
});

test('a cgroup that does not exist is not seized', () => {
  expect(seizedByCriu(join(dir, 'no-such-cgroup'))).toBe(false);
});
