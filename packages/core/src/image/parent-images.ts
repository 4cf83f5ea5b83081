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
import { open, readdir, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { gatherFile, hashFilePages, PAGE_SIZE, type FileRange } from '@ferry/native';
import { encodePagemapImage, type PagemapEntryOut } from './pagemap-writer';
import { imageCorrupt } from './image-errors';
import { readPagemap } from './image-records';
import { PE_FLAGS } from './image-schema';

export interface MemoryRun {
  vaddr: bigint;
  /** The run's pages back to back (a multiple of PAGE_SIZE); several buffers are written one after the other. */
  data: readonly Buffer[];
}

/** Writes pagemap-TASK.img and pages-ID.img into `dir` (runs must be in increasing, non-overlapping vaddr order). */
export async function writeTaskMemoryImage(dir: string, task: number, pagesId: number, runs: Iterable<MemoryRun>): Promise<{ pages: number }> {
  const entries: PagemapEntryOut[] = [];
  const out = createWriteStream(join(dir, `pages-${pagesId}.img`), { mode: 0o600 });
  let pages = 0;
  let end = -1n;
  try {
    for (const run of runs) {
      const bytes = run.data.reduce((n, b) => n + b.length, 0);
      if (bytes % PAGE_SIZE !== 0 || bytes === 0) throw new RangeError(`run at 0x${run.vaddr.toString(16)} holds ${bytes} bytes, not whole pages`);
      if (run.vaddr < end) throw new RangeError(`run at 0x${run.vaddr.toString(16)} overlaps or precedes the previous one`);
      const nr = bytes / PAGE_SIZE;
      entries.push({ vaddr: run.vaddr, nrPages: nr, flags: PE_FLAGS.PRESENT });
      end = run.vaddr + BigInt(bytes);
      pages += nr;
      for (const b of run.data) if (!out.write(b)) await once(out, 'drain');
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  await writeFile(join(dir, `pagemap-${task}.img`), encodePagemapImage(pagesId, entries), { mode: 0o600 });
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
  const output = await open(join(dir, `${pagesName}.rewrite`), 'w', 0o600);
  const entries: PagemapEntryOut[] = [];
  // Consecutive pages with the same flags become one entry, as CRIU writes them.
  const add = (vaddr: bigint, nr: number, flags: number) => {
    const last = entries[entries.length - 1];
    if (last && last.flags === flags && last.vaddr + BigInt(last.nrPages * PAGE_SIZE) === vaddr) last.nrPages += nr;
    else entries.push({ vaddr, nrPages: nr, flags });
  };
  try {
    const present = pagemap.ranges.reduce((n, r) => n + (r.flags & PE_FLAGS.PRESENT ? r.nrPages : 0), 0);
    const { size } = await input.stat();
    if (size < present * PAGE_SIZE) throw imageCorrupt(join(dir, pagesName), `is ${size} bytes, but ${pagemapName} needs ${present * PAGE_SIZE}`);
    // Hash the dump where it lies (page cache), then copy out only the pages the parent lacks.
    const hashes = await hashFilePages(input.fd, 0, present);
    const held = new Uint8Array(present);
    let index = 0;
    for (const range of pagemap.ranges) {
      if (!(range.flags & PE_FLAGS.PRESENT)) continue;
      holds(task, range.vaddr, hashes.subarray(index, index + range.nrPages), held.subarray(index, index + range.nrPages));
      index += range.nrPages;
    }
    index = 0;
    const kept: FileRange[] = [];
    for (const range of pagemap.ranges) {
      if (!(range.flags & PE_FLAGS.PRESENT)) {
        add(range.vaddr, range.nrPages, range.flags);
        continue;
      }
      for (let i = 0; i < range.nrPages; ) {
        let j = i + 1;
        while (j < range.nrPages && held[index + j] === held[index + i]) j++;
        const at = range.vaddr + BigInt(i * PAGE_SIZE);
        if (held[index + i]) {
          add(at, j - i, (range.flags & ~PE_FLAGS.PRESENT) | PE_FLAGS.PARENT);
          result.pagesInParent += j - i;
        } else {
          add(at, j - i, range.flags);
          kept.push({ offset: (index + i) * PAGE_SIZE, length: (j - i) * PAGE_SIZE });
          result.bytesKept += (j - i) * PAGE_SIZE;
        }
        i = j;
      }
      index += range.nrPages;
      result.pages += range.nrPages;
    }
    await copyRanges(input, output, kept);
  } finally {
    await input.close();
    await output.close();
  }
  await writeFile(join(dir, `${pagemapName}.rewrite`), encodePagemapImage(pagemap.pagesId, entries), { mode: 0o600 });
  await rename(join(dir, `${pagesName}.rewrite`), join(dir, pagesName));
  await rename(join(dir, `${pagemapName}.rewrite`), join(dir, pagemapName));
}

const COPY_CHUNK = 32 << 20;

/** Copies the ranges of `input`, in order, to the start of `output`, in gathers of up to COPY_CHUNK bytes. */
async function copyRanges(input: FileHandle, output: FileHandle, ranges: readonly FileRange[]): Promise<void> {
  let buffer: Buffer | undefined;
  let group: FileRange[] = [];
  let groupBytes = 0;
  const flush = async () => {
    if (groupBytes === 0) return;
    buffer ??= Buffer.allocUnsafe(COPY_CHUNK);
    const data = await gatherFile(input.fd, group, buffer);
    await output.write(data, 0, data.length);
    group = [];
    groupBytes = 0;
  };
  for (let r of ranges) {
    // A range longer than a chunk is cut into chunks.
    while (r.length > 0) {
      const take = Math.min(r.length, COPY_CHUNK - groupBytes);
      group.push({ offset: r.offset, length: take });
      groupBytes += take;
      r = { offset: r.offset + take, length: r.length - take };
      if (groupBytes === COPY_CHUNK) await flush();
    }
  }
  await flush();
}

export interface LazyRanges {
  /** Task (pid in the dump) → its lazy ranges, from pagemap-PID.img entries CRIU left out of the pages files. */
  tasks: Map<number, { vaddr: bigint; nrPages: number }[]>;
  pages: number;
}

const isLazyOnly = (flags: number) => (flags & PE_FLAGS.LAZY) !== 0 && (flags & PE_FLAGS.PRESENT) === 0;

/** The pages a lazy dump (`--lazy-pages`) did not write, per task. */
export async function lazyRanges(dir: string): Promise<LazyRanges> {
  const tasks = new Map<number, { vaddr: bigint; nrPages: number }[]>();
  let pages = 0;
  for (const name of await readdir(dir)) {
    const m = TASK_PAGEMAP.exec(name);
    if (!m) {
      if (/^pagemap-(shmem|secretmem)-\d+\.img$/.test(name) && (await readPagemap(join(dir, name))).ranges.some((r) => isLazyOnly(r.flags))) {
        throw imageCorrupt(join(dir, name), 'shared memory was left for lazy restore; ferry only takes task memory from a parent');
      }
      continue;
    }
    const ranges = (await readPagemap(join(dir, name))).ranges.filter((r) => isLazyOnly(r.flags)).map((r) => ({ vaddr: r.vaddr, nrPages: r.nrPages }));
    tasks.set(Number(m[1]), ranges);
    pages += ranges.reduce((n, r) => n + r.nrPages, 0);
  }
  return { tasks, pages };
}

/**
 * Turns a lazy dump into one restored from its parent: every page CRIU left for lazy restore is marked "in parent"
 * (the caller has made sure the parent holds each of them with the frozen content). Pages files are untouched.
 */
export async function lazyToParent(dir: string): Promise<{ pages: number }> {
  let pages = 0;
  for (const name of await readdir(dir)) {
    if (!TASK_PAGEMAP.test(name)) continue;
    const pagemap = await readPagemap(join(dir, name));
    const entries: PagemapEntryOut[] = pagemap.ranges.map((r) => {
      if (!isLazyOnly(r.flags)) return r;
      pages += r.nrPages;
      return { vaddr: r.vaddr, nrPages: r.nrPages, flags: r.flags | PE_FLAGS.PARENT };
    });
    await writeFile(join(dir, `${name}.rewrite`), encodePagemapImage(pagemap.pagesId, entries), { mode: 0o600 });
    await rename(join(dir, `${name}.rewrite`), join(dir, name));
  }
  return { pages };
}
