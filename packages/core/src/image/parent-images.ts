/**
 * Memory images chained to a parent: the two halves of ferry's hash-based pre-copy (no kernel memory tracking).
 *
 * - writeTaskMemoryImage: the destination writes the pages it already holds as a parent image set (pagemap-T.img
 *   and pages-N.img per task, nothing else: CRIU's restore reads only those from a parent).
 * - rewriteAgainstParent: the source rewrites a full dump so that every page the destination already holds with
 *   the same content is marked PE_PARENT instead of stored, and its pages file keeps only the others. CRIU restores
 *   such a directory exactly like one from `criu pre-dump` + `criu dump --prev-images-dir`, once a `parent` link
 *   points at the parent set.
 *
 * Shared memory (pagemap-shmem-*.img) is left whole: it is rarely large in containers and tracked per segment.
 */
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { hashPages, PAGE_SIZE } from '@ferry/native';
import { encodeImage, type WireObject } from './image-file';
import { imageCorrupt } from './image-errors';
import { readPagemap } from './image-records';
import { PAGEMAP_IMAGE, PE_FLAGS } from './image-schema';

export interface MemoryRun {
  vaddr: bigint;
  /** The run's pages back to back (a multiple of PAGE_SIZE); several buffers are written one after the other. */
  data: readonly Buffer[];
}

/** Writes pagemap-TASK.img and pages-ID.img into `dir` (runs must be in increasing, non-overlapping vaddr order). */
export async function writeTaskMemoryImage(dir: string, task: number, pagesId: number, runs: Iterable<MemoryRun>): Promise<{ pages: number }> {
  const entries: WireObject[] = [];
  const out = createWriteStream(join(dir, `pages-${pagesId}.img`), { mode: 0o600 });
  let pages = 0;
  let end = -1n;
  try {
    for (const run of runs) {
      const bytes = run.data.reduce((n, b) => n + b.length, 0);
      if (bytes % PAGE_SIZE !== 0 || bytes === 0) throw new RangeError(`run at 0x${run.vaddr.toString(16)} holds ${bytes} bytes, not whole pages`);
      if (run.vaddr < end) throw new RangeError(`run at 0x${run.vaddr.toString(16)} overlaps or precedes the previous one`);
      const nr = bytes / PAGE_SIZE;
      entries.push({ vaddr: run.vaddr.toString(), compat_nr_pages: 0, nr_pages: nr, flags: PE_FLAGS.PRESENT });
      end = run.vaddr + BigInt(bytes);
      pages += nr;
      for (const b of run.data) if (!out.write(b)) await once(out, 'drain');
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  await writeFile(join(dir, `pagemap-${task}.img`), encodeImage(PAGEMAP_IMAGE, entries, { head: { pages_id: pagesId } }), { mode: 0o600 });
  return { pages };
}

/**
 * Decides, for `hashes.length` consecutive pages of task `task` starting at `vaddr`, which ones the parent holds with
 * exactly this content: sets held[i] = 1 for those.
 */
export type ParentHolds = (task: number, vaddr: bigint, hashes: BigUint64Array, held: Uint8Array) => void;

export interface RewriteResult {
  /** Pages in the dump's task pagemaps. */
  pages: number;
  /** Of those, pages now taken from the parent. */
  pagesInParent: number;
  /** Bytes left in the rewritten pages files. */
  bytesKept: number;
}

const TASK_PAGEMAP = /^pagemap-(\d+)\.img$/;
// Hash and decide in slices: bounded memory whatever the size of one pagemap entry.
const SLICE_PAGES = 4096;

export async function rewriteAgainstParent(dir: string, holds: ParentHolds): Promise<RewriteResult> {
  const result: RewriteResult = { pages: 0, pagesInParent: 0, bytesKept: 0 };
  for (const name of await readdir(dir)) {
    const m = TASK_PAGEMAP.exec(name);
    if (m) await rewriteTask(dir, name, Number(m[1]), holds, result);
  }
  return result;
}

async function rewriteTask(dir: string, pagemapName: string, task: number, holds: ParentHolds, result: RewriteResult): Promise<void> {
  const pagemap = await readPagemap(join(dir, pagemapName));
  const pagesName = `pages-${pagemap.pagesId}.img`;
  const input = await open(join(dir, pagesName), 'r');
  const out = createWriteStream(join(dir, `${pagesName}.rewrite`), { mode: 0o600 });
  const entries: WireObject[] = [];
  // Consecutive pages with the same flags become one entry, as CRIU writes them.
  const add = (vaddr: bigint, nr: number, flags: number) => {
    const last = entries[entries.length - 1];
    if (last && last.flags === flags && BigInt(last.vaddr as string) + BigInt((last.nr_pages as number) * PAGE_SIZE) === vaddr) {
      last.nr_pages = (last.nr_pages as number) + nr;
    } else {
      entries.push({ vaddr: vaddr.toString(), compat_nr_pages: 0, nr_pages: nr, flags });
    }
  };
  let position = 0;
  try {
    for (const range of pagemap.ranges) {
      if (!(range.flags & PE_FLAGS.PRESENT)) {
        add(range.vaddr, range.nrPages, range.flags);
        continue;
      }
      for (let done = 0; done < range.nrPages; ) {
        const nr = Math.min(SLICE_PAGES, range.nrPages - done);
        const vaddr = range.vaddr + BigInt(done * PAGE_SIZE);
        const data = Buffer.allocUnsafe(nr * PAGE_SIZE);
        const { bytesRead } = await input.read(data, 0, data.length, position);
        if (bytesRead !== data.length) throw imageCorrupt(join(dir, pagesName), `ends at ${position + bytesRead} bytes, but ${pagemapName} needs ${position + data.length}`);
        position += data.length;
        const { hashes } = await hashPages(data);
        const held = new Uint8Array(nr);
        holds(task, vaddr, hashes, held);
        for (let i = 0; i < nr; ) {
          let j = i + 1;
          while (j < nr && held[j] === held[i]) j++;
          const at = vaddr + BigInt(i * PAGE_SIZE);
          if (held[i]) {
            add(at, j - i, (range.flags & ~PE_FLAGS.PRESENT) | PE_FLAGS.PARENT);
            result.pagesInParent += j - i;
          } else {
            add(at, j - i, range.flags);
            const kept = data.subarray(i * PAGE_SIZE, j * PAGE_SIZE);
            result.bytesKept += kept.length;
            if (!out.write(kept)) await once(out, 'drain');
          }
          i = j;
        }
        result.pages += nr;
        done += nr;
      }
    }
  } finally {
    await input.close();
    out.end();
    await once(out, 'close');
  }
  await writeFile(join(dir, `${pagemapName}.rewrite`), encodeImage(PAGEMAP_IMAGE, entries, { head: { pages_id: pagemap.pagesId } }), { mode: 0o600 });
  await rename(join(dir, `${pagesName}.rewrite`), join(dir, pagesName));
  await rename(join(dir, `${pagemapName}.rewrite`), join(dir, pagemapName));
}
