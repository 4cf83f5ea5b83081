/**
 * The destination's copy of a running container's memory during hash-based pre-copy, kept as a chain of CRIU
 * parent image sets, written as the records arrive (nothing is left to write when the source freezes):
 *
 *   levels/1/pagemap-T.img, pages-T.img            round 1: every page, in address order (the base)
 *   levels/N/pagemap-T.img, pages-T.img, parent -> ../N-1
 *                                                  round N: pages the base has are rewritten *in place* in the
 *                                                  base's file; only pages new since round 1 go to this level's
 *                                                  file; its pagemap lists those as present and every other held
 *                                                  page as "in parent"
 *
 * Rewriting in place keeps every level above the base nearly empty, with a pagemap of a few large "in parent"
 * entries: CRIU restores from such a chain as fast as from a flat image set (a chain whose levels hold thousands of
 * scattered pages each made the restore several times slower).
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePagemapImage, FerryError, PAGE_SIZE, PE_FLAGS, scatterFiles, type FdRange, type PagemapEntryOut } from '@ferry/core';
import { RecordKind, type PageRecord } from './page-records';
import { split, union, type Interval } from './page-intervals';

const ZERO = Buffer.alloc(1 << 20);
const FLUSH_BYTES = 8 << 20;
const IOV_MAX = 1024;

interface TaskRound {
  /** This level's pages file (created when the round has a page outside the base). */
  file?: FileHandle;
  /** Pages written to this level's file, in increasing order. */
  intervals: Interval[];
  /** Where the previous record of this task ended: records arrive in address order. */
  end: number;
  /** Data not yet written to this level's file (scattered single pages one write each would crawl). */
  pending: Buffer[];
  pendingBytes: number;
}

interface Base {
  file: FileHandle;
  intervals: Interval[];
  /** Page index in the base file of each interval's first page. */
  starts: number[];
}

export class PageLevels {
  private level = 0;
  /** Every page held by the chain so far, per task. */
  private readonly held = new Map<number, Interval[]>();
  /** Round 1's files, rewritten in place by later rounds. */
  private readonly base = new Map<number, Base>();
  private round = new Map<number, TaskRound>();
  /** In-place writes not yet done: ranges of base files and their bytes, in order. */
  private inPlace: FdRange[] = [];
  private inPlaceData: Buffer[] = [];
  private inPlaceBytes = 0;
  /** Pages rewritten in place during the current round. */
  private rewritten = 0;

  constructor(private readonly root: string) {}

  /** The top level's number (0 before any round). */
  get levels(): number {
    return this.level;
  }

  private dir(level: number): string {
    return join(this.root, String(level));
  }

  beginRound(): void {
    if (this.round.size > 0 || this.inPlace.length > 0) throw new Error('beginRound: the previous round is not finished');
    this.level++;
    this.rewritten = 0;
    mkdirSync(this.dir(this.level), { recursive: true, mode: 0o700 });
    if (this.level > 1) symlinkSync(`../${this.level - 1}`, join(this.dir(this.level), 'parent'));
  }

  async add(record: PageRecord): Promise<void> {
    if (this.level === 0) throw new Error('add: no round begun');
    let task = this.round.get(record.task);
    if (!task) this.round.set(record.task, (task = { intervals: [], end: 0, pending: [], pendingBytes: 0 }));
    const first = Number(record.vaddr / BigInt(PAGE_SIZE));
    if (first < task.end) {
      throw new FerryError('ERR_AGENT_PROTOCOL', `pre-copy stream: pages of task ${record.task} out of order at 0x${record.vaddr.toString(16)}`, {
        hint: 'Install the same ferry version on both hosts.',
      });
    }
    task.end = first + record.pages;
    const bytesOf = (from: number, to: number): Buffer[] => {
      if (record.kind === RecordKind.DATA) return [record.data!.subarray((from - first) * PAGE_SIZE, (to - first) * PAGE_SIZE)];
      const out: Buffer[] = [];
      for (let left = (to - from) * PAGE_SIZE; left > 0; left -= ZERO.length) out.push(ZERO.subarray(0, Math.min(left, ZERO.length)));
      return out;
    };
    const base = this.base.get(record.task);
    for (const [from, to, inBase] of pieces(first, first + record.pages, base?.intervals ?? [])) {
      if (inBase) {
        this.queueInPlace(base!, from, to, bytesOf(from, to));
        this.rewritten += to - from;
      } else {
        await this.appendToLevel(task, record.task, from, to, bytesOf(from, to));
      }
    }
    if (this.inPlaceBytes >= FLUSH_BYTES) await this.flushInPlace();
  }

  private queueInPlace(base: Base, from: number, to: number, data: Buffer[]): void {
    // Find the base interval holding `from` (binary search); [from, to) lies inside it.
    let lo = 0;
    let hi = base.intervals.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (base.intervals[mid]![0] <= from) lo = mid;
      else hi = mid - 1;
    }
    const offset = (base.starts[lo]! + (from - base.intervals[lo]![0])) * PAGE_SIZE;
    this.inPlace.push({ fd: base.file.fd, offset, length: (to - from) * PAGE_SIZE });
    for (const d of data) {
      this.inPlaceData.push(d);
      this.inPlaceBytes += d.length;
    }
  }

  private async flushInPlace(): Promise<void> {
    if (this.inPlace.length === 0) return;
    const src = this.inPlaceData.length === 1 ? this.inPlaceData[0]! : Buffer.concat(this.inPlaceData, this.inPlaceBytes);
    const ranges = this.inPlace;
    this.inPlace = [];
    this.inPlaceData = [];
    this.inPlaceBytes = 0;
    await scatterFiles(ranges, src);
  }

  private async appendToLevel(task: TaskRound, taskId: number, from: number, to: number, data: Buffer[]): Promise<void> {
    const last = task.intervals[task.intervals.length - 1];
    if (last && last[1] === from) last[1] = to;
    else task.intervals.push([from, to]);
    for (const d of data) {
      task.pending.push(d);
      task.pendingBytes += d.length;
    }
    if (task.pendingBytes >= FLUSH_BYTES) await this.flushLevel(task, taskId);
  }

  private async flushLevel(task: TaskRound, taskId: number): Promise<void> {
    if (task.pending.length === 0) return;
    task.file ??= await open(join(this.dir(this.level), `pages-${taskId}.img`), 'w', 0o600);
    for (let i = 0; i < task.pending.length; i += IOV_MAX) await task.file.writev(task.pending.slice(i, i + IOV_MAX));
    task.pending = [];
    task.pendingBytes = 0;
  }

  /**
   * Finishes the level: in-place writes done, this level's pagemaps written (its own pages present, every other
   * held page in the parent). After round 1, its files become the base.
   */
  async endRound(): Promise<{ pages: number; held: number; rewritten: number }> {
    await this.flushInPlace();
    let pages = 0;
    let held = 0;
    const dir = this.dir(this.level);
    const tasks = new Set([...this.held.keys(), ...this.round.keys()]);
    for (const taskId of tasks) {
      const round = this.round.get(taskId);
      const own = round?.intervals ?? [];
      if (round) {
        await this.flushLevel(round, taskId);
        await round.file?.close();
      }
      if (own.length === 0) await writeFile(join(dir, `pages-${taskId}.img`), Buffer.alloc(0), { mode: 0o600 });
      const now = union(this.held.get(taskId) ?? [], own);
      this.held.set(taskId, now);
      const entries: PagemapEntryOut[] = split(now, own).map(([from, to, present]) => ({
        vaddr: BigInt(from) * BigInt(PAGE_SIZE),
        nrPages: to - from,
        flags: present ? PE_FLAGS.PRESENT : PE_FLAGS.PARENT,
      }));
      await writeFile(join(dir, `pagemap-${taskId}.img`), encodePagemapImage(taskId, entries), { mode: 0o600 });
      pages += own.reduce((n, [a, b]) => n + b - a, 0);
      held += now.reduce((n, [a, b]) => n + b - a, 0);
      if (this.level === 1 && own.length > 0) {
        const starts: number[] = [];
        let acc = 0;
        for (const [a, b] of own) {
          starts.push(acc);
          acc += b - a;
        }
        this.base.set(taskId, { file: await open(join(dir, `pages-${taskId}.img`), 'r+'), intervals: own, starts });
      }
    }
    this.round = new Map();
    return { pages: pages + this.rewritten, held, rewritten: this.rewritten };
  }

  /** Closes every file (after the last round, or on abort). */
  async close(): Promise<void> {
    for (const t of this.round.values()) await t.file?.close().catch(() => undefined);
    this.round = new Map();
    for (const b of this.base.values()) await b.file.close().catch(() => undefined);
    this.base.clear();
    this.inPlace = [];
    this.inPlaceData = [];
    this.inPlaceBytes = 0;
  }
}

/** Cuts [from, to) into pieces inside or outside `base` (sorted, disjoint), in order. */
function pieces(from: number, to: number, base: readonly Interval[]): [number, number, boolean][] {
  if (base.length === 0) return [[from, to, false]];
  const out: [number, number, boolean][] = [];
  // First base interval ending after `from` (binary search).
  let lo = 0;
  let hi = base.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (base[mid]![1] <= from) lo = mid + 1;
    else hi = mid;
  }
  let at = from;
  for (let k = lo; at < to; k++) {
    const b = base[k];
    if (!b || b[0] >= to) {
      out.push([at, to, false]);
      break;
    }
    if (b[0] > at) out.push([at, b[0], false]);
    const end = Math.min(to, b[1]);
    if (end > Math.max(at, b[0])) out.push([Math.max(at, b[0]), end, true]);
    at = end;
  }
  return out;
}
