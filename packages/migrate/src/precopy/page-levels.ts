/**
 * The destination's copy of a running container's memory during hash-based pre-copy, kept as a chain of CRIU
 * parent image sets: one level per round, holding only that round's pages, with every older page marked
 * "in parent" (exactly what `criu pre-dump` chains look like). Pages go to disk as they arrive, so nothing is
 * left to write when the source freezes, and the final images just point at the top level.
 *
 *   levels/1/pagemap-T.img, pages-T.img           round 1: every page sent
 *   levels/2/pagemap-T.img, pages-T.img, parent -> ../1   round 2: its pages present, the rest in parent
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { gatherFiles, PAGE_SIZE, type FdRange } from '@ferry/native';
import { FerryError, encodePagemapImage, PE_FLAGS, type PagemapEntryOut } from '@ferry/core';
import { RecordKind, type PageRecord } from './page-records';

/** [first page number, end page number) */
export type Interval = [number, number];

const ZERO = Buffer.alloc(1 << 20);
const FLUSH_BYTES = 8 << 20;
const IOV_MAX = 1024;

async function flush(task: TaskRound): Promise<void> {
  for (let i = 0; i < task.pending.length; i += IOV_MAX) await task.file.writev(task.pending.slice(i, i + IOV_MAX));
  task.pending = [];
  task.pendingBytes = 0;
}

interface TaskRound {
  file: FileHandle;
  /** Data not yet written: scattered single pages arrive as thousands of records, one write each would crawl. */
  pending: Buffer[];
  pendingBytes: number;
  /** Pages written this round, in increasing order (the source sends each task's pages in address order). */
  intervals: Interval[];
}

export class PageLevels {
  private level = 0;
  /** The oldest level still in use (compact() starts a new chain). */
  private bottom = 1;
  /** Every page held by the chain so far, per task. */
  private readonly held = new Map<number, Interval[]>();
  /** What each level's pages files hold: level → task → intervals, in file order. */
  private readonly present = new Map<number, Map<number, Interval[]>>();
  private round = new Map<number, TaskRound>();

  constructor(private readonly root: string) {}

  get top(): string | undefined {
    return this.level === 0 ? undefined : this.dir(this.level);
  }

  get levels(): number {
    return this.level;
  }

  private dir(level: number): string {
    return join(this.root, String(level));
  }

  beginRound(): void {
    if (this.round.size > 0) throw new Error('beginRound: the previous round is not finished');
    this.level++;
    mkdirSync(this.dir(this.level), { recursive: true, mode: 0o700 });
    if (this.level > this.bottom) symlinkSync(`../${this.level - 1}`, join(this.dir(this.level), 'parent'));
  }

  async add(record: PageRecord): Promise<void> {
    if (this.level === 0) throw new Error('add: no round begun');
    let task = this.round.get(record.task);
    if (!task) {
      const file = await open(join(this.dir(this.level), `pages-${record.task}.img`), 'w', 0o600);
      task = { file, intervals: [], pending: [], pendingBytes: 0 };
      this.round.set(record.task, task);
    }
    const first = Number(record.vaddr / BigInt(PAGE_SIZE));
    const last = task.intervals[task.intervals.length - 1];
    if (last && first < last[1]) {
      throw new FerryError('ERR_AGENT_PROTOCOL', `pre-copy stream: pages of task ${record.task} out of order at 0x${record.vaddr.toString(16)}`, {
        hint: 'Install the same ferry version on both hosts.',
      });
    }
    if (last && last[1] === first) last[1] = first + record.pages;
    else task.intervals.push([first, first + record.pages]);
    if (record.kind === RecordKind.DATA) {
      task.pending.push(record.data!);
    } else {
      for (let left = record.pages * PAGE_SIZE; left > 0; left -= ZERO.length) task.pending.push(ZERO.subarray(0, Math.min(left, ZERO.length)));
    }
    task.pendingBytes += record.pages * PAGE_SIZE;
    if (task.pendingBytes >= FLUSH_BYTES) await flush(task);
  }

  /** Writes this level's pagemaps: the round's pages present, everything held before in the parent. */
  async endRound(): Promise<{ pages: number; held: number }> {
    let pages = 0;
    let held = 0;
    const tasks = new Set([...this.held.keys(), ...this.round.keys()]);
    this.present.set(this.level, new Map([...this.round].map(([task, r]) => [task, r.intervals])));
    for (const task of tasks) {
      const round = this.round.get(task);
      const before = this.held.get(task) ?? [];
      const now = union(before, round?.intervals ?? []);
      this.held.set(task, now);
      const entries: PagemapEntryOut[] = [];
      for (const [from, to, inRound] of split(now, round?.intervals ?? [])) {
        entries.push({ vaddr: BigInt(from) * BigInt(PAGE_SIZE), nrPages: to - from, flags: inRound ? PE_FLAGS.PRESENT : PE_FLAGS.PARENT });
        if (inRound) pages += to - from;
        held += to - from;
      }
      if (round) {
        await flush(round);
        await round.file.close();
      }
      else await writeFile(join(this.dir(this.level), `pages-${task}.img`), Buffer.alloc(0), { mode: 0o600 });
      await writeFile(join(this.dir(this.level), `pagemap-${task}.img`), encodePagemapImage(task, entries), { mode: 0o600 });
    }
    this.round = new Map();
    return { pages, held };
  }

  /**
   * Rewrites the chain as one level without a parent: every held page, latest content, in address order. CRIU
   * restores from a deep chain much more slowly than from a flat set (every page "in parent" is looked up level by
   * level), so this runs once the rounds are over, while the source freezes and dumps. Older levels are deleted.
   */
  async compact(): Promise<{ pages: number; ms: number }> {
    if (this.round.size > 0) throw new Error('compact: a round is not finished');
    const started = Date.now();
    const from = this.bottom;
    const to = this.level;
    this.level++;
    this.bottom = this.level;
    const dir = this.dir(this.level);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = new Map<string, FileHandle>();
    let pages = 0;
    try {
      for (const [task, held] of this.held) {
        const pieces = latestPieces(held, to, from, (level) => this.present.get(level)?.get(task) ?? []);
        const ranges: { level: number; offset: number; length: number }[] = pieces.map((p) => ({ level: p.level, offset: p.fileOffset * PAGE_SIZE, length: (p.end - p.start) * PAGE_SIZE }));
        for (const level of new Set(ranges.map((r) => r.level))) {
          const key = `${level}/${task}`;
          if (!files.has(key)) files.set(key, await open(join(this.dir(level), `pages-${task}.img`), 'r'));
        }
        const out = await open(join(dir, `pages-${task}.img`), 'w', 0o600);
        try {
          await copyPieces(ranges.map((r) => ({ fd: files.get(`${r.level}/${task}`)!.fd, offset: r.offset, length: r.length })), out);
        } finally {
          await out.close();
        }
        const entries: PagemapEntryOut[] = held.map(([a, b]) => ({ vaddr: BigInt(a) * BigInt(PAGE_SIZE), nrPages: b - a, flags: PE_FLAGS.PRESENT }));
        await writeFile(join(dir, `pagemap-${task}.img`), encodePagemapImage(task, entries), { mode: 0o600 });
        pages += held.reduce((n, [a, b]) => n + b - a, 0);
      }
    } finally {
      for (const f of files.values()) await f.close().catch(() => undefined);
    }
    for (let level = from; level <= to; level++) {
      this.present.delete(level);
      rmSync(this.dir(level), { recursive: true, force: true });
    }
    this.present.set(this.level, new Map(this.held));
    return { pages, ms: Date.now() - started };
  }

  /** Closes files of an unfinished round (abort). */
  async close(): Promise<void> {
    for (const t of this.round.values()) await t.file.close().catch(() => undefined);
    this.round = new Map();
  }
}

/** Union of two sorted interval lists. */
export function union(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [s, e] of all) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Cuts `held` (sorted, disjoint) into pieces inside or outside `present` (sorted, disjoint, within held). */
export function split(held: readonly Interval[], present: readonly Interval[]): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  let p = 0;
  for (const [s, e] of held) {
    let at = s;
    while (at < e) {
      while (p < present.length && present[p]![1] <= at) p++;
      const next = present[p];
      if (next && next[0] <= at) {
        const end = Math.min(e, next[1]);
        out.push([at, end, true]);
        at = end;
      } else {
        const end = next ? Math.min(e, next[0]) : e;
        out.push([at, end, false]);
        at = end;
      }
    }
  }
  return out;
}

export interface Piece {
  start: number;
  end: number;
  level: number;
  /** Page index of `start` within that level's pages file. */
  fileOffset: number;
}

/**
 * For every held page, the newest level (from `top` down to `bottom`) whose pages file has it, as pieces in address
 * order, with where each piece sits in its level's file.
 */
export function latestPieces(held: readonly Interval[], top: number, bottom: number, presentOf: (level: number) => readonly Interval[]): Piece[] {
  const pieces: Piece[] = [];
  let remaining: Interval[] = held.map(([a, b]) => [a, b]);
  for (let level = top; level >= bottom && remaining.length > 0; level--) {
    const present = presentOf(level);
    // Page offsets of each interval in the level's file: the intervals are stored back to back.
    const starts: number[] = [];
    let acc = 0;
    for (const [a, b] of present) {
      starts.push(acc);
      acc += b - a;
    }
    const left: Interval[] = [];
    let p = 0;
    for (const [s, e] of remaining) {
      let at = s;
      while (at < e) {
        while (p < present.length && present[p]![1] <= at) p++;
        const next = present[p];
        if (next && next[0] <= at) {
          const end = Math.min(e, next[1]);
          pieces.push({ start: at, end, level, fileOffset: starts[p]! + (at - next[0]) });
          at = end;
        } else {
          const end = next ? Math.min(e, next[0]) : e;
          left.push([at, end]);
          at = end;
        }
      }
    }
    remaining = left;
  }
  if (remaining.length > 0) throw new Error(`latestPieces: pages ${remaining[0]![0]}.. are held but in no level`);
  return pieces.sort((x, y) => x.start - y.start);
}

const COPY_CHUNK = 32 << 20;

/** Copies the ranges, in order, to the start of `out`, gathering up to COPY_CHUNK bytes per native call. */
async function copyPieces(ranges: readonly FdRange[], out: FileHandle): Promise<void> {
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let group: FdRange[] = [];
  let bytes = 0;
  const flush = async () => {
    if (bytes === 0) return;
    const data = await gatherFiles(group, buffer);
    await out.write(data, 0, data.length);
    group = [];
    bytes = 0;
  };
  for (let r of ranges) {
    while (r.length > 0) {
      const take = Math.min(r.length, COPY_CHUNK - bytes);
      group.push({ fd: r.fd, offset: r.offset, length: take });
      bytes += take;
      r = { fd: r.fd, offset: r.offset + take, length: r.length - take };
      if (bytes === COPY_CHUNK) await flush();
    }
  }
  await flush();
}
