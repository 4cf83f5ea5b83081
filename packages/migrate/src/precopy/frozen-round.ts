/**
 * The last round of hash-based pre-copy, on the frozen container. CRIU's lazy dump (`--lazy-pages`) dumps
 * everything but the task memory it could restore lazily; ferry reads that memory from the frozen tasks itself,
 * sends the pages the destination does not hold with that content, and then marks them all "in parent". CRIU never
 * writes or reads the bulk of the memory while the container is frozen.
 *
 * The read starts as soon as the tree is frozen (the freezer reads FROZEN, or CRIU has seized every task and thawed
 * the freezer again), while CRIU is still dumping the rest; once the dump is ready, any lazy page the early read did
 * not cover (none, normally) is read and sent in a second, strict pass. No user code runs between the freeze and the
 * end of the dump, so both reads see the frozen memory.
 */
import type { Writable } from 'node:stream';
import { containerTasks, Freezer, FerryError, lazyRanges, PAGE_SIZE, presentPrivateRanges, seizedByCriu, tasksHeld, type MemoryRange } from '@ferry/core';
import type { AgentPeer } from '../protocol/agent-peer';
import { releaseReadBuffers, sendTaskRanges, type RoundStats, type SentPages } from './memory-rounds';
import { subtract, union, type Interval } from './page-intervals';

export interface FinalRoundOptions {
  peer: AgentPeer;
  migrationId: string;
  /** Host pid of the container's init. */
  initPid: number;
  imagesDir: string;
  sent: SentPages;
  /** The container's freezer cgroup, when known: the read starts once it is frozen. */
  freezerPath?: string;
  /** Resolves when the lazy dump is ready (its images written); rejects when the dump failed. */
  dumpReady: Promise<void>;
}

export interface FinalRoundResult extends RoundStats {
  /** Pages the lazy dump left out (all now held by the destination). */
  lazyPages: number;
  /** Of those, pages the early read had not covered and the second pass read. */
  latePages: number;
  /** Whether the read overlapped the dump (the freezer was watched). */
  early: boolean;
}

const POLL_MS = 2;

/**
 * Resolves once the tree is frozen: the freezer reports FROZEN, or CRIU has seized every task (it thaws the freezer
 * right after, so watching for FROZEN alone missed the start of the dump a third of the time), or the dump is ready.
 */
async function frozen(freezerPath: string | undefined, dumpReady: Promise<void>): Promise<boolean> {
  if (!freezerPath) {
    await dumpReady;
    return false;
  }
  let freezer: Freezer;
  try {
    freezer = Freezer.at(freezerPath);
  } catch {
    await dumpReady;
    return false;
  }
  let ready = false;
  dumpReady.then(() => (ready = true), () => (ready = true));
  for (;;) {
    if (ready) {
      await dumpReady; // rethrows a failed dump
      return false;
    }
    if (freezer.state() === 'frozen' || seizedByCriu(freezerPath)) return true;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function add(a: RoundStats, b: RoundStats): RoundStats {
  return {
    tasks: Math.max(a.tasks, b.tasks),
    scannedPages: a.scannedPages + b.scannedPages,
    pages: a.pages + b.pages,
    zeroPages: a.zeroPages + b.zeroPages,
    bytes: a.bytes + b.bytes,
    readMs: a.readMs + b.readMs,
    cpuMs: a.cpuMs + b.cpuMs,
  };
}

const toIntervals = (ranges: readonly MemoryRange[]): Interval[] =>
  union(
    [],
    ranges.map((r) => {
      const first = Number(r.address / BigInt(PAGE_SIZE));
      return [first, first + r.length / PAGE_SIZE] as Interval;
    }),
  );

export async function runFinalRound(options: FinalRoundOptions): Promise<FinalRoundResult> {
  try {
    return await finalRound(options);
  } finally {
    releaseReadBuffers(options.sent);
  }
}

async function finalRound(options: FinalRoundOptions): Promise<FinalRoundResult> {
  const { peer, migrationId, sent } = options;
  const early = await frozen(options.freezerPath, options.dumpReady);

  // Pass 1: every present private page of the frozen tasks (the same listing as the rounds).
  const covered = new Map<number, Interval[]>();
  const tasks = await containerTasks(options.initPid);
  const listed = await Promise.all(
    tasks.map(async (t) => {
      const ranges = await presentPrivateRanges(t.pid);
      covered.set(t.vpid, toIntervals(ranges));
      return { ...t, ranges };
    }),
  );
  // CRIU's parasite may make unreadable memory readable for a moment while it dumps: what pass 1 listed but could not
  // read is left to pass 2, which reads after the dump and strictly.
  const onUnreadable = (task: { vpid: number }, ranges: readonly MemoryRange[]) =>
    covered.set(task.vpid, subtract(covered.get(task.vpid) ?? [], toIntervals(ranges)));
  let stats!: RoundStats;
  await peer.request('precopy-round', { migrationId }, async (sink: Writable) => {
    stats = await sendTaskRanges(listed, sent, sink, { strict: true, onUnreadable });
  });

  // Pass 2: what the dump left lazy and pass 1 did not read.
  await options.dumpReady;
  const lazy = await lazyRanges(options.imagesDir);
  const pids = new Map(tasks.map((t) => [t.vpid, t.pid]));
  const late: { pid: number; vpid: number; ranges: MemoryRange[] }[] = [];
  let latePages = 0;
  for (const [vpid, ranges] of lazy.tasks) {
    const wanted = toIntervals(ranges.map((r) => ({ address: r.vaddr, length: r.nrPages * PAGE_SIZE })));
    const missing = subtract(wanted, covered.get(vpid) ?? []);
    if (missing.length === 0) continue;
    const pid = pids.get(vpid);
    if (pid === undefined) {
      throw new FerryError('ERR_CRIU_DUMP_FAILED', `the dump holds process ${vpid} of the container, but no such process is frozen on this host`, {
        hint: 'The source resumes. Migrate with --strategy stop-and-copy.',
      });
    }
    latePages += missing.reduce((n, [a, b]) => n + b - a, 0);
    late.push({ pid, vpid, ranges: missing.map(([a, b]) => ({ address: BigInt(a) * BigInt(PAGE_SIZE), length: (b - a) * PAGE_SIZE })) });
  }
  if (late.length > 0) {
    let more!: RoundStats;
    await peer.request('precopy-round', { migrationId }, async (sink: Writable) => {
      more = await sendTaskRanges(late, sent, sink, { strict: true });
    });
    stats = add(stats, more);
  }
  // CRIU's lazy dump holds the tasks (ptrace) while the freezer reads thawed: were it killed during the reads, the
  // tasks ran again and part of what was read is newer than the dump (a move that went on then ran on corrupt
  // memory: fault matrix, final-round/src-criu). Still held now means held throughout: nothing re-takes them.
  const hold = tasksHeld(tasks.map((t) => t.pid), options.freezerPath);
  if (!hold.held) {
    throw new FerryError('ERR_CRIU_DUMP_FAILED', `the source's dump let the container go during the final round (${hold.detail}): what was read may be newer than the dump`, {
      hint: 'The source resumes. Run the move again.',
    });
  }
  return { ...stats, lazyPages: lazy.pages, latePages, early };
}
