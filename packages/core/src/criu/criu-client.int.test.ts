/**
 * The CRIU client against the real CRIU (root, provisioned host): a process in its own PID namespace is dumped and
 * restored, and its state is verified afterwards.
 */
import { killQuietly, runCleanups } from '../testing/cleanups';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../model/ferry-error';
import { createImageDir } from '../image/image-dir';
import {
  isAlive,
  readWorkloadState,
  startWorkloadInPidNamespace,
  verifyWorkloadMemory,
  waitFor,
  waitForCounter,
  type PidNamespaceWorkload,
} from '../testing/workload';
import { createCriuClient } from './create-criu-client';

jest.setTimeout(60_000);

const criu = createCriuClient();
let dir: string;
const cleanups: (() => void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-criu-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

async function start(memMib = 32): Promise<{ workload: PidNamespaceWorkload; stateFile: string }> {
  const stateFile = join(dir, 'state');
  const workload = await startWorkloadInPidNamespace({ stateFile, memMib, dirtyPagesPerSec: 500 });
  cleanups.push(() => workload.stop());
  await waitForCounter(stateFile, 3);
  return { workload, stateFile };
}

function killLater(pid: number): void {
  cleanups.push(() => killQuietly(pid));
}

test('reports its version and features', async () => {
  const version = await criu.version();
  expect(version.major * 100 + version.minor).toBeGreaterThanOrEqual(402);
  const features = await criu.features();
  expect(typeof features.memTrack).toBe('boolean');
  expect(typeof features.lazyPages).toBe('boolean');
});

test('dumps a process in its own PID namespace and restores it with memory and counter intact', async () => {
  const { workload, stateFile } = await start();
  const images = createImageDir(join(dir, 'images'));
  await criu.dump({ pid: workload.pid, imagesDir: images });
  expect(isAlive(workload.pid)).toBe(false);
  const atDump = readWorkloadState(stateFile)!.counter;

  const restored = await criu.restore({ imagesDir: images });
  killLater(restored.pid);
  expect(isAlive(restored.pid)).toBe(true);
  const after = await waitForCounter(stateFile, atDump + 5);
  expect(after.counter).toBeGreaterThan(atDump);
  expect(await verifyWorkloadMemory(restored.pid, stateFile)).toBe('ok');
  expect(existsSync(restored.logPath)).toBe(true);
});

test('dumpWithHold keeps the tree frozen until told; resume() lets it run on', async () => {
  const { workload, stateFile } = await start();
  const images = createImageDir(join(dir, 'images'));
  const hold = await criu.dumpWithHold({ pid: workload.pid, imagesDir: images });
  const frozenAt = readWorkloadState(stateFile)!.counter;
  await new Promise((r) => setTimeout(r, 300));
  expect(readWorkloadState(stateFile)!.counter).toBe(frozenAt);
  await hold.resume();
  expect(isAlive(workload.pid)).toBe(true);
  await waitForCounter(stateFile, frozenAt + 3);
  expect(await verifyWorkloadMemory(workload.pid, stateFile)).toBe('ok');
});

test('dumpWithHold commit() ends the source tree; the images restore', async () => {
  const { workload, stateFile } = await start();
  const images = createImageDir(join(dir, 'images'));
  const hold = await criu.dumpWithHold({ pid: workload.pid, imagesDir: images });
  await hold.commit();
  await waitFor('source gone', () => !isAlive(workload.pid));
  const restored = await criu.restore({ imagesDir: images });
  killLater(restored.pid);
  const atDump = readWorkloadState(stateFile)!.counter;
  await waitForCounter(stateFile, atDump + 2);
});

test('a corrupted image fails restore with ERR_CRIU_RESTORE_FAILED and a log excerpt', async () => {
  const { workload } = await start(8);
  const images = createImageDir(join(dir, 'images'));
  await criu.dump({ pid: workload.pid, imagesDir: images });
  writeFileSync(join(images, 'inventory.img'), Buffer.from('not an image'));
  let caught: unknown;
  try {
    const r = await criu.restore({ imagesDir: images });
    killLater(r.pid);
  } catch (err) {
    caught = err;
  }
  expect(isFerryError(caught, 'ERR_CRIU_RESTORE_FAILED')).toBe(true);
  const error = caught as { message: string; details: { logPath: string; logExcerpt: string[] } };
  expect(error.details.logPath).toBe(join(images, 'restore.log'));
  expect(error.details.logExcerpt.join('\n')).toMatch(/Error/);
  expect(error.details.logExcerpt.join('\n')).not.toMatch(/RLIMIT_NOFILE/);
  expect(error.message).toContain('restore.log');
});

test('a dump of a pid that does not exist fails with ERR_CRIU_DUMP_FAILED', async () => {
  const images = createImageDir(join(dir, 'images'));
  await expect(criu.dump({ pid: 999_999_99, imagesDir: images })).rejects.toMatchObject({ code: 'ERR_CRIU_DUMP_FAILED' });
});
