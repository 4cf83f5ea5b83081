/**
 * The destination's copy of a running container's memory during hash-based pre-copy: the latest content of every
 * page the source sent, by task and page number. Kept in memory (the agent's host has room for what it is about to
 * run) and written out once, as a CRIU parent image set, when the source is about to freeze.
 */
import { PAGE_SIZE } from '@ferry/native';
import { writeTaskMemoryImage, type MemoryRun } from '@ferry/core';
import { RecordKind, type PageRecord } from './page-records';

const ZERO = Buffer.alloc(1 << 20);
const ZERO_PAGES = ZERO.length / PAGE_SIZE;

export class PageStore {
  /** task → page number → the page's bytes (a view into the record that brought it), or null for a zero page. */
  private readonly tasks = new Map<number, Map<number, Buffer | null>>();

  add(record: PageRecord): void {
    let pages = this.tasks.get(record.task);
    if (!pages) this.tasks.set(record.task, (pages = new Map()));
    const first = Number(record.vaddr / BigInt(PAGE_SIZE));
    for (let i = 0; i < record.pages; i++) {
      pages.set(first + i, record.kind === RecordKind.ZERO ? null : record.data!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    }
  }

  get pageCount(): number {
    let n = 0;
    for (const pages of this.tasks.values()) n += pages.size;
    return n;
  }

  /** Bytes of a page as held, or undefined (tests and diagnostics). */
  page(task: number, vaddr: bigint): Buffer | undefined {
    const p = this.tasks.get(task)?.get(Number(vaddr / BigInt(PAGE_SIZE)));
    return p === null ? ZERO.subarray(0, PAGE_SIZE) : p;
  }

  /** Writes every held page as a parent image set into `dir` (one pagemap and pages file per task). */
  async writeParent(dir: string): Promise<{ tasks: number; pages: number }> {
    let pagesId = 0;
    let total = 0;
    for (const [task, pages] of this.tasks) {
      const { pages: n } = await writeTaskMemoryImage(dir, task, ++pagesId, runs(pages));
      total += n;
    }
    return { tasks: this.tasks.size, pages: total };
  }

  clear(): void {
    this.tasks.clear();
  }
}

/** Consecutive pages as runs; within a run, neighbouring views of one buffer are merged into one write. */
function* runs(pages: Map<number, Buffer | null>): Generator<MemoryRun> {
  const keys = Float64Array.from(pages.keys()).sort();
  let i = 0;
  while (i < keys.length) {
    const start = keys[i]!;
    const data: Buffer[] = [];
    let zeros = 0;
    const flushZeros = () => {
      for (; zeros > 0; zeros -= Math.min(zeros, ZERO_PAGES)) data.push(ZERO.subarray(0, Math.min(zeros, ZERO_PAGES) * PAGE_SIZE));
    };
    let j = i;
    for (; j < keys.length && keys[j] === start + (j - i); j++) {
      const page = pages.get(keys[j]!)!;
      if (page === null) {
        zeros++;
        continue;
      }
      flushZeros();
      const last = data[data.length - 1];
      if (last && last.buffer === page.buffer && last.byteOffset + last.length === page.byteOffset) {
        data[data.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + page.length);
      } else {
        data.push(page);
      }
    }
    flushZeros();
    yield { vaddr: BigInt(start) * BigInt(PAGE_SIZE), data };
    i = j;
  }
}
