/**
 * Parent images with real CRIU: a parent set written by ferry (from an earlier dump's pages) plus a later full dump
 * rewritten against it restore a process whose memory the workload itself verifies, page by page.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPages, PAGE_SIZE } from '@ferry/native';
import { createCriuClient } from '../criu/create-criu-client';
import { killQuietly, runCleanups } from '../testing/cleanups';
import { isAlive, readWorkloadState, startWorkloadInPidNamespace, verifyWorkloadMemory, waitForCounter } from '../testing/workload';
import { createImageDir } from './image-dir';
import { readPagemap } from './image-records';
import { PE_FLAGS } from './image-schema';
import { rewriteAgainstParent, writeTaskMemoryImage } from './parent-images';

jest.setTimeout(90_000);

const criu = createCriuClient();
let dir: string;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-parent-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

interface HeldPage {
  hash: bigint;
  data: Buffer;
}

/** Every present page of a dump's task pagemaps, by task and page number. */
async function loadPages(images: string): Promise<Map<number, Map<bigint, HeldPage>>> {
  const tasks = new Map<number, Map<bigint, HeldPage>>();
  for (const name of readdirSync(images)) {
    const m = /^pagemap-(\d+)\.img$/.exec(name);
    if (!m) continue;
    const pagemap = await readPagemap(join(images, name));
    const data = readFileSync(join(images, `pages-${pagemap.pagesId}.img`));
    const { hashes } = await hashPages(data);
    const pages = new Map<bigint, HeldPage>();
    let i = 0;
    for (const range of pagemap.ranges) {
      if (!(range.flags & PE_FLAGS.PRESENT)) continue;
      for (let p = 0; p < range.nrPages; p++, i++) {
        pages.set(range.vaddr / BigInt(PAGE_SIZE) + BigInt(p), { hash: hashes[i]!, data: data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE) });
      }
    }
    tasks.set(Number(m[1]), pages);
  }
  return tasks;
}

test('a full dump rewritten against a ferry-written parent restores bit-identical memory', async () => {
  const stateFile = join(dir, 'state');
  // 2000 pages/s over 8192 pages: a good share changes between the two dumps, most does not.
  const workload = await startWorkloadInPidNamespace({ stateFile, memMib: 32, dirtyPagesPerSec: 2000 });
  cleanups.push(() => workload.stop());
  await waitForCounter(stateFile, 3);

  const first = createImageDir(join(dir, 'first'));
  await criu.dump({ pid: workload.pid, imagesDir: first, leaveRunning: true });
  const held = await loadPages(first);
  // Write the parent the way the destination does: sorted pages, consecutive ones as one run.
  const parent = createImageDir(join(dir, 'parent'));
  let pagesId = 0;
  for (const [task, pages] of held) {
    const keys = [...pages.keys()].sort((a, b) => (a < b ? -1 : 1));
    const runs: { vaddr: bigint; data: Buffer[] }[] = [];
    for (const k of keys) {
      const last = runs[runs.length - 1];
      const vaddr = k * BigInt(PAGE_SIZE);
      if (last && last.vaddr + BigInt(last.data.length * PAGE_SIZE) === vaddr) last.data.push(pages.get(k)!.data);
      else runs.push({ vaddr, data: [pages.get(k)!.data] });
    }
    await writeTaskMemoryImage(parent, task, ++pagesId, runs);
  }

  await new Promise((r) => setTimeout(r, 1500));
  const last = createImageDir(join(dir, 'last'));
  await criu.dump({ pid: workload.pid, imagesDir: last });
  expect(isAlive(workload.pid)).toBe(false);
  const atDump = readWorkloadState(stateFile)!.counter;

  const rewrite = await rewriteAgainstParent(last, (task, vaddr, hashes, mask) => {
    const pages = held.get(task);
    const first = vaddr / BigInt(PAGE_SIZE);
    for (let i = 0; i < hashes.length; i++) if (pages?.get(first + BigInt(i))?.hash === hashes[i]) mask[i] = 1;
  });
  expect(rewrite.pagesInParent).toBeGreaterThan(rewrite.pages / 2);
  expect(rewrite.pagesInParent).toBeLessThan(rewrite.pages);
  expect(rewrite.bytesKept).toBe((rewrite.pages - rewrite.pagesInParent) * PAGE_SIZE);
  symlinkSync('../parent', join(last, 'parent'));

  const restored = await criu.restore({ imagesDir: last });
  cleanups.push(() => killQuietly(restored.pid));
  await waitForCounter(stateFile, atDump + 3);
  expect(await verifyWorkloadMemory(restored.pid, stateFile)).toBe('ok');
});
