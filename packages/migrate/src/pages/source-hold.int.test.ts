/**
 * ferry's hold on a lazily dumped source (real CRIU, root): the cgroup freezes while CRIU holds the tasks, the tasks
 * stay frozen when CRIU is killed -9, and a rollback (releaseLazyDump) lets them run again with their memory intact.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, readWorkloadState, removeTestDir, runCleanups, startLazySource, verifyWorkloadMemory, waitFor, waitForCounter, type Cleanup } from '@ferry/core/testing';
import { Freezer } from '@ferry/core';
import { holdFrozen, releaseLazyDump } from './source-hold';

jest.setTimeout(120_000);

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-hold-int-'))));
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

const taskState = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
};
const tracer = (pid: number) => Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

test("the source stays frozen under ferry's hold when CRIU is killed -9, and runs again, intact, after the rollback", async () => {
  const src = await startLazySource({ dir, memMib: 32 });
  cleanups.push(() => src.stop());
  await src.ready;
  expect(tracer(src.pid)).toBeGreaterThan(0);
  await holdFrozen(src.freezerPath);
  expect(Freezer.at(src.freezerPath).state()).toBe('frozen');

  process.kill(src.dump.pid!, 'SIGKILL');
  await src.dumpExited;
  await waitFor('CRIU to let go of the task', () => tracer(src.pid) === 0);
  const counter = readWorkloadState(src.stateFile)!.counter;
  await new Promise((r) => setTimeout(r, 1000));
  expect(readWorkloadState(src.stateFile)!.counter).toBe(counter);
  expect(Freezer.at(src.freezerPath).state()).toBe('frozen');
  expect(taskState(src.pid)).toBe('D');

  await releaseLazyDump({ freezerPath: src.freezerPath });
  await waitForCounter(src.stateFile, counter + 2);
  expect(isAlive(src.pid)).toBe(true);
  expect(await verifyWorkloadMemory(src.pid, src.stateFile)).toBe('ok');
});
