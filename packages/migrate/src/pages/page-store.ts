/**
 * Pages the destination already holds, by task (its pid in the images) and page number (address / 4096):
 * - ChainPageStore: a CRIU image directory and its `parent` chain (hash-pre-copy's levels, precopy/page-levels.ts,
 *   final round included): each page is read from the highest level that has it present.
 * - FetchedPages: pages pulled from the source over the link, in memory until the lazy-pages daemon has taken them.
 */
import { existsSync, openSync, closeSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { gatherFiles, type FdRange } from '@ferry/core';
import { PE_FLAGS, readPagemap } from '@ferry/core';
import { subtract, union, type Interval } from '../precopy/page-intervals';

export const PAGE = 4096;

/** The page number of an address (rounded down), and the address of a page. */
export const pageOf = (address: bigint): number => Number(address / BigInt(PAGE));
export const addressOf = (page: number): bigint => BigInt(page) * BigInt(PAGE);

export interface PageStore {
  /** Pages of task `pid` held here, sorted and disjoint. */
  held(pid: number): readonly Interval[];
  /** How many pages from `first` on (at most `max`) are held, consecutively. */
  run(pid: number, first: number, max: number): number;
  /** Pages [first, first + count); every one must be held. */
  read(pid: number, first: number, count: number): Promise<Buffer>;
}

interface Segment {
  first: number;
  end: number;
  fd: number;
  /** Page index in the file of `first`. */
  filePage: number;
}

const TASK_PAGEMAP = /^pagemap-(\d+)\.img$/;

/** Run length of `first` in sorted, disjoint intervals (binary search). */
export function runIn(intervals: readonly Interval[], first: number, max: number): number {
  let lo = 0;
  let hi = intervals.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [s, e] = intervals[mid]!;
    if (first < s) hi = mid - 1;
    else if (first >= e) lo = mid + 1;
    else return Math.min(max, e - first);
  }
  return 0;
}

export class ChainPageStore implements PageStore {
  private readonly segments = new Map<number, Segment[]>();
  private readonly coverage = new Map<number, Interval[]>();
  private readonly fds: number[] = [];

  private constructor() {}

  /** Indexes `topDir` and every `parent` below it. The files stay open until close(). */
  static async open(topDir: string): Promise<ChainPageStore> {
    const store = new ChainPageStore();
    try {
      const seen = new Set<string>();
      for (let dir: string | undefined = topDir; dir !== undefined; ) {
        const real = realpathSync(dir);
        if (seen.has(real)) throw new Error(`${dir}: the parent chain loops`);
        seen.add(real);
        await store.addLevel(real);
        const parent = join(real, 'parent');
        dir = existsSync(parent) ? parent : undefined;
      }
      for (const list of store.segments.values()) list.sort((a, b) => a.first - b.first);
      return store;
    } catch (error) {
      store.close();
      throw error;
    }
  }

  private async addLevel(dir: string): Promise<void> {
    for (const name of readdirSync(dir)) {
      const m = TASK_PAGEMAP.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      const pagemap = await readPagemap(join(dir, name));
      let fd: number | undefined;
      let filePage = 0;
      const covered = this.coverage.get(pid) ?? [];
      const added: Interval[] = [];
      for (const range of pagemap.ranges) {
        if ((range.flags & PE_FLAGS.PRESENT) === 0) continue;
        const first = pageOf(range.vaddr);
        const at = filePage;
        filePage += range.nrPages;
        for (const [s, e] of subtract([[first, first + range.nrPages]], covered)) {
          if (fd === undefined) this.fds.push((fd = openSync(join(dir, `pages-${pagemap.pagesId}.img`), 'r')));
          let list = this.segments.get(pid);
          if (!list) this.segments.set(pid, (list = []));
          list.push({ first: s, end: e, fd, filePage: at + (s - first) });
          added.push([s, e]);
        }
      }
      if (added.length > 0) this.coverage.set(pid, union(covered, added));
    }
  }

  held(pid: number): readonly Interval[] {
    return this.coverage.get(pid) ?? [];
  }

  run(pid: number, first: number, max: number): number {
    return runIn(this.held(pid), first, max);
  }

  async read(pid: number, first: number, count: number): Promise<Buffer> {
    const list = this.segments.get(pid) ?? [];
    const ranges: FdRange[] = [];
    let at = first;
    const end = first + count;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.end <= at) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; at < end; k++) {
      const seg = list[k];
      if (!seg || seg.first > at) throw new RangeError(`page ${at} of task ${pid} is not in the chain`);
      const stop = Math.min(end, seg.end);
      ranges.push({ fd: seg.fd, offset: (seg.filePage + (at - seg.first)) * PAGE, length: (stop - at) * PAGE });
      at = stop;
    }
    return gatherFiles(ranges);
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}

interface Chunk {
  first: number;
  end: number;
  data: Buffer;
  /** Pages of it the daemon has taken. */
  taken: number;
}

/** Pages fetched from the source, kept until the daemon has taken them (then dropped: it never asks twice). */
export class FetchedPages implements PageStore {
  private readonly tasks = new Map<number, Chunk[]>();
  private readonly intervals = new Map<number, Interval[]>();
  bytes = 0;

  add(pid: number, first: number, data: Buffer): void {
    const count = data.length / PAGE;
    let list = this.tasks.get(pid);
    if (!list) this.tasks.set(pid, (list = []));
    const at = this.indexAfter(list, first);
    list.splice(at, 0, { first, end: first + count, data, taken: 0 });
    this.intervals.set(pid, union(this.intervals.get(pid) ?? [], [[first, first + count]]));
    this.bytes += data.length;
  }

  held(pid: number): readonly Interval[] {
    return this.intervals.get(pid) ?? [];
  }

  run(pid: number, first: number, max: number): number {
    return runIn(this.held(pid), first, max);
  }

  async read(pid: number, first: number, count: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let at = first;
    const end = first + count;
    const list = this.tasks.get(pid) ?? [];
    for (let k = Math.max(0, this.indexAfter(list, at) - 1); at < end; k++) {
      const c = list[k];
      if (!c || c.first > at) throw new RangeError(`page ${at} of task ${pid} was not fetched`);
      if (c.end <= at) continue;
      const stop = Math.min(end, c.end);
      parts.push(c.data.subarray((at - c.first) * PAGE, (stop - c.first) * PAGE));
      at = stop;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The daemon has taken pages [first, first + count): chunks it has taken whole are freed. */
  taken(pid: number, first: number, count: number): void {
    const list = this.tasks.get(pid);
    if (!list) return;
    const end = first + count;
    for (let k = Math.max(0, this.indexAfter(list, first) - 1); k < list.length && list[k]!.first < end; ) {
      const c = list[k]!;
      const overlap = Math.min(end, c.end) - Math.max(first, c.first);
      if (overlap > 0) c.taken += overlap;
      if (c.taken >= c.end - c.first) {
        list.splice(k, 1);
        this.bytes -= c.data.length;
        this.intervals.set(pid, subtract(this.intervals.get(pid) ?? [], [[c.first, c.end]]));
      } else k++;
    }
  }

  /** Index of the first chunk starting after `page`. */
  private indexAfter(list: readonly Chunk[], page: number): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.first <= page) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Consecutive pages from `first` (at most max) held by any of the stores, in order of preference. */
export function localRun(stores: readonly PageStore[], pid: number, first: number, max: number): number {
  let at = first;
  while (at - first < max) {
    let step = 0;
    for (const store of stores) {
      step = store.run(pid, at, first + max - at);
      if (step > 0) break;
    }
    if (step === 0) break;
    at += step;
  }
  return at - first;
}

/** Reads pages the stores hold (see localRun), each piece from the first store that has it. */
export async function readLocal(stores: readonly PageStore[], pid: number, first: number, count: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = first;
  while (at < first + count) {
    const store = stores.find((s) => s.run(pid, at, 1) > 0);
    if (!store) throw new RangeError(`page ${at} of task ${pid} is not held here`);
    const step = store.run(pid, at, first + count - at);
    parts.push(await store.read(pid, at, step));
    at += step;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
