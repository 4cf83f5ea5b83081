/**
 * The image model against directories written by the real CRIU CLI (root, provisioned host): fixtures/workload.c
 * is dumped and the directory is parsed, cross-checked with what CRIU printed and with the files on disk.
 */
import { killQuietly, runCleanups } from '../testing/cleanups';
import { execFile, spawn } from 'node:child_process';
import { readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFixture } from '../testing/fixtures';
import { startWorkloadInPidNamespace, waitForCounter, workloadArgs } from '../testing/workload';
import { createImageDir } from './image-dir';
import { imageDirBytes, readImageSet, type ImageSet } from './image-set';
import { computeManifest, verifyManifest } from './manifest';

jest.setTimeout(120_000);

const run = promisify(execFile);
const PAGE = 4096;
const MEM_MIB = 32;
const root = createImageDir();
const cleanups: (() => void)[] = [];

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(root, { recursive: true, force: true });
});

function killLater(pid: number): void {
  cleanups.push(() => killQuietly(pid));
}

/** `criu dump` with --display-stats; returns CRIU's own "Name: N us" lines so units can be checked. */
async function criuDump(pid: number, dir: string, extra: string[] = []): Promise<Map<string, number>> {
  const { stdout, stderr } = await run('criu', ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '--display-stats', ...extra]);
  const printed = new Map<string, number>();
  for (const m of `${stdout}\n${stderr}`.matchAll(/^([A-Za-z ]+): (\d+) us$/gm)) printed.set(m[1]!, Number(m[2]));
  return printed;
}

function filesOnDisk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

describe('a dump of a process that is init of its own PID namespace', () => {
  const dir = join(root, 'pidns');
  let set: ImageSet;
  let printed: Map<string, number>;

  beforeAll(async () => {
    const stateFile = join(root, 'pidns.state');
    const workload = await startWorkloadInPidNamespace({ stateFile, memMib: MEM_MIB });
    cleanups.push(() => workload.stop());
    await waitForCounter(stateFile, 2);
    printed = await criuDump(workload.pid, createImageDir(dir));
    set = await readImageSet(dir);
  });

  it('has one task, recorded with its pid inside the namespace', () => {
    // CRIU stores the pid the task has in its own namespace (1 here), not the host pid passed to -t.
    expect(set.kind).toBe('dump');
    expect(set.tasks).toHaveLength(1);
    expect(set.tasks[0]).toMatchObject({ pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1] });
    expect(set.inventory).toMatchObject({ imgVersion: 2, networkLock: 'iptables' });
  });

  it('counts every page the workload touched, and the pages files hold exactly those', () => {
    const memory = set.tasks[0]!.memory!;
    expect(memory.presentPages).toBeGreaterThanOrEqual((MEM_MIB * 1024 * 1024) / PAGE);
    expect(memory.pagesBytes).toBe(memory.presentPages * PAGE);
    expect(memory.parentPages).toBe(0);
    expect(memory.lazyPages).toBe(0);
    const pagesFiles = filesOnDisk(dir).filter((f) => /^pages-\d+\.img$/.test(f));
    expect(set.totals.pagesBytes).toBe(pagesFiles.reduce((n, f) => n + statSync(join(dir, f)).size, 0));
    expect(set.totals.pagesBytes).toBe(set.totals.presentPages * PAGE);
  });

  it('reads stats-dump in milliseconds, matching what CRIU printed in microseconds', () => {
    const dump = set.stats.dump!;
    expect(dump.frozenMs).toBeGreaterThan(0);
    expect(dump.pagesWritten).toBeGreaterThan(0);
    expect(dump.pagesWritten).toBe(set.totals.presentPages);
    expect(dump.pagesScanned).toBeGreaterThanOrEqual(dump.pagesWritten);
    expect(Math.round(dump.frozenMs * 1000)).toBe(printed.get('Frozen time'));
    expect(Math.round(dump.memdumpMs * 1000)).toBe(printed.get('Memory dump time'));
    expect(Math.round(dump.memwriteMs * 1000)).toBe(printed.get('Memory write time'));
    expect(Math.round(dump.freezingMs * 1000)).toBe(printed.get('Freezing time'));
    expect(set.stats.restore).toBeUndefined();
  });

  it('lists every file, naming the image type of each CRIU image', () => {
    expect(set.files.map((f) => f.name)).toEqual(filesOnDisk(dir));
    for (const file of set.files) {
      const expected = file.name.endsWith('.img') || file.name.startsWith('stats-');
      if (expected) expect([file.name, file.imageType]).toEqual([file.name, expect.any(String)]);
    }
    expect(set.files.find((f) => f.name === 'core-1.img')?.imageType).toBe('CORE');
    expect(set.files.find((f) => f.name === 'dump.log')?.imageType).toBeUndefined();
  });

  it('computes a manifest that covers every file and verifies', async () => {
    const manifest = await computeManifest(dir);
    expect(manifest.entries.map((e) => e.path)).toEqual(filesOnDisk(dir));
    expect(manifest.totalBytes).toBe(await imageDirBytes(dir));
    expect(manifest.totalBytes).toBe(set.totals.bytes);
    expect(await verifyManifest(dir, manifest)).toEqual([]);
  });
});

describe('a dump of a process in the host PID namespace', () => {
  const dir = join(root, 'host');
  let hostPid: number;
  let set: ImageSet;

  beforeAll(async () => {
    const stateFile = join(root, 'host.state');
    const child = spawn(buildFixture('workload'), workloadArgs({ stateFile, memMib: 4 }), { stdio: 'ignore', detached: true });
    hostPid = child.pid!;
    killLater(hostPid);
    await waitForCounter(stateFile, 2);
    await criuDump(hostPid, createImageDir(dir));
    set = await readImageSet(dir);
  });

  it('records the host pid', () => {
    expect(set.tasks.map((t) => t.pid)).toEqual([hostPid]);
    expect(set.tasks[0]!.memory?.pagemapFile).toBe(`pagemap-${hostPid}.img`);
    expect(set.totals.presentPages).toBeGreaterThanOrEqual((4 * 1024 * 1024) / PAGE);
  });
});

describe('a dump with a parent image', () => {
  it('follows the parent link in the model but not in the manifest', async () => {
    const memTrack = await run('criu', ['check', '--feature', 'mem_dirty_track']).then(
      () => true,
      () => false,
    );
    const parentDir = join(root, 'parent-1');
    const childDir = join(root, 'parent-2');
    if (memTrack) {
      const stateFile = join(root, 'parent.state');
      const workload = await startWorkloadInPidNamespace({ stateFile, memMib: 16 });
      cleanups.push(() => workload.stop());
      await waitForCounter(stateFile, 2);
      await run('criu', ['pre-dump', '-t', String(workload.pid), '-D', createImageDir(parentDir), '-o', 'dump.log', '--track-mem']);
      await criuDump(workload.pid, createImageDir(childDir), ['--prev-images-dir', '../parent-1', '--track-mem']);
    } else {
      // No soft-dirty tracking on this kernel, so no pre-dump: give two real dumps a parent link by hand instead.
      console.warn('image-set.int.test: criu pre-dump unavailable (mem_dirty_track check failed); testing a hand-made parent link');
      for (const d of [parentDir, childDir]) {
        const stateFile = `${d}.state`;
        const workload = await startWorkloadInPidNamespace({ stateFile, memMib: 4 });
        cleanups.push(() => workload.stop());
        await waitForCounter(stateFile, 2);
        await criuDump(workload.pid, createImageDir(d));
      }
      symlinkSync('../parent-1', join(childDir, 'parent'));
    }

    const set = await readImageSet(childDir);
    expect(set.parent).toEqual({ target: '../parent-1', path: realpathSync(parentDir), exists: true });
    if (memTrack) {
      expect(set.totals.parentPages).toBeGreaterThan(0);
      expect(set.stats.dump!.pagesSkippedParent).toBeGreaterThan(0);
    }
    const parentBytes = await imageDirBytes(parentDir);
    const manifest = await computeManifest(childDir);
    expect(manifest.entries.find((e) => e.path === 'parent')).toEqual({ path: 'parent', type: 'symlink', target: '../parent-1' });
    expect(manifest.entries.filter((e) => e.path.startsWith('parent/'))).toEqual([]);
    expect(manifest.totalBytes).toBe(set.totals.bytes);
    expect(manifest.totalBytes).toBe(await imageDirBytes(childDir));
    expect(parentBytes).toBeGreaterThan(0);
    expect(await verifyManifest(childDir, manifest)).toEqual([]);
  });
});
