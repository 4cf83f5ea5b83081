/**
 * A lazy dump turned into one restored from a parent: the frozen step of ferry's hash-based pre-copy. CRIU's lazy
 * dump (`--lazy-pages`) writes everything but the task memory it could restore lazily; ferry reads those pages from
 * the frozen tasks itself and makes sure the destination's parent image chain holds each one with the frozen
 * content; then every such page is marked "in parent", and CRIU restores the directory like the last step of a
 * `criu pre-dump` chain once a `parent` link points at the chain.
 */
import { readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageCorrupt } from './image-errors';
import { readPagemap } from './image-records';
import { PE_FLAGS } from './image-schema';
import { encodePagemapImage, type PagemapEntryOut } from './pagemap-writer';

const TASK_PAGEMAP = /^pagemap-(\d+)\.img$/;

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
