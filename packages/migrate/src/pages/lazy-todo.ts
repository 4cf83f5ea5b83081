/**
 * The pages of one restored address space still to be copied in by ferry's lazy-pages handler (local-lazy-pages.ts):
 * sorted, disjoint ranges of page numbers, each remembering where its content is in the images (`img`: the image's
 * page number of `start`; it differs from `start` once the task moved the range with mremap). A range never crosses
 * a VMA boundary of the images (UFFDIO_COPY works within one VMA), which the caller ensures by cutting them so.
 */
export interface TodoRange {
  start: number;
  end: number;
  img: number;
}

export class LazyTodo {
  private ranges: TodoRange[];

  constructor(ranges: readonly TodoRange[] = []) {
    this.ranges = ranges.map((r) => ({ ...r })).sort((a, b) => a.start - b.start);
  }

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  get pages(): number {
    return this.ranges.reduce((n, r) => n + r.end - r.start, 0);
  }

  /** Index of the range holding `page`, or -1. */
  private find(page: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (page < r.start) hi = mid - 1;
      else if (page >= r.end) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  has(page: number): boolean {
    return this.find(page) >= 0;
  }

  /** Takes up to `max` pages from `page` on (within its range), or undefined when `page` is not to do. */
  takeAt(page: number, max: number): TodoRange | undefined {
    const i = this.find(page);
    if (i < 0) return undefined;
    const r = this.ranges[i]!;
    const taken = { start: page, end: Math.min(r.end, page + max), img: r.img + (page - r.start) };
    this.drop(taken.start, taken.end);
    return taken;
  }

  /** Takes up to `max` pages from the front, or undefined when nothing is left. */
  takeFirst(max: number): TodoRange | undefined {
    const r = this.ranges[0];
    return r ? this.takeAt(r.start, max) : undefined;
  }

  /** Removes [start, end) (the task unmapped it, or dropped its content). */
  drop(start: number, end: number): void {
    if (end <= start) return;
    const out: TodoRange[] = [];
    for (const r of this.ranges) {
      if (r.end <= start || r.start >= end) {
        out.push(r);
        continue;
      }
      if (r.start < start) out.push({ start: r.start, end: start, img: r.img });
      if (r.end > end) out.push({ start: end, end: r.end, img: r.img + (end - r.start) });
    }
    this.ranges = out;
  }

  /** Puts ranges back (a copy that did not happen, a parent's pages in flight at a fork). */
  add(ranges: readonly TodoRange[]): void {
    for (const r of ranges) {
      if (r.end <= r.start) continue;
      this.drop(r.start, r.end);
      this.ranges.push({ ...r });
    }
    this.ranges.sort((a, b) => a.start - b.start);
  }

  /** mremap moved [from, from + len) to [to, to + len): what was to do there is to do at the new place. */
  remap(from: number, to: number, len: number): void {
    const moved: TodoRange[] = [];
    for (const r of this.ranges) {
      const s = Math.max(r.start, from);
      const e = Math.min(r.end, from + len);
      if (s < e) moved.push({ start: s - from + to, end: e - from + to, img: r.img + (s - r.start) });
    }
    this.drop(from, from + len);
    this.add(moved);
  }

  clone(): LazyTodo {
    return new LazyTodo(this.ranges);
  }
}

/**
 * The to-do ranges of a task: its lazy pagemap ranges (page numbers), cut at the ends of its VMAs (page numbers) as
 * CRIU's own daemon cuts them.
 */
export function todoFromImages(lazy: readonly [number, number][], vmas: readonly [number, number][]): TodoRange[] {
  const out: TodoRange[] = [];
  for (const [s, e] of lazy) {
    let at = s;
    for (const [vs, ve] of vmas) {
      if (at >= e) break;
      if (ve <= at || vs >= e) continue;
      const start = Math.max(at, vs);
      const end = Math.min(e, ve);
      out.push({ start, end, img: start });
      at = end;
    }
  }
  return out;
}
