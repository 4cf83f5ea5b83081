/**
 * The source half of hash-based pre-copy: one round reads every present private page of the container's tasks
 * (process_vm_readv, no kernel tracking needed), hashes it, and sends the pages whose hash differs from what the
 * destination holds. `SentPages` is the source's exact mirror of the destination's pages, by hash.
 */
import type { Writable } from 'node:stream';
import { allocPageAligned, containerTasks, FerryError, hashPages, isFerryError, PAGE_SIZE, presentPrivateRanges, readMemory, type MemoryRange } from '@ferry/core';
import { encodeRecordHeader, MAX_RECORD_PAGES, RecordKind } from './page-records';
import { hashHalves, SentPages } from './page-mirror';

export { SentPages };

export interface RoundStats {
  tasks: number;
  /** Present private pages read and hashed. */
  scannedPages: number;
  /** Pages sent because they changed (or were new). */
  pages: number;
  /** Of those, all-zero pages (sent as a header only). */
  zeroPages: number;
  /** Payload bytes written (headers and page data). */
  bytes: number;
  /** Time spent reading and hashing memory. */
  readMs: number;
  /** CPU time this process used during the round (all threads: reading and hashing run on the libuv pool). */
  cpuMs: number;
}

export interface RoundOptions {
  /** Bytes read per process_vm_readv batch; bounds memory use. */
  batchBytes?: number;
}

const DEFAULT_BATCH = 32 << 20;
const COALESCE_BYTES = 1 << 20;

/** One process's memory to read in a round: its pids and the address ranges. */
export interface TaskRanges {
  pid: number;
  vpid: number;
  ranges: readonly MemoryRange[] | (() => Promise<MemoryRange[]>);
}

/**
 * Sends one round over the container's running processes into `sink` (the agent's upload stream) and updates
 * `sent`. Waits for the sink to drain, so a slow link slows the reading instead of filling memory.
 */
export async function sendRound(initPid: number, sent: SentPages, sink: Writable, options: RoundOptions = {}): Promise<RoundStats> {
  const tasks = (await containerTasks(initPid)).map((t) => ({ ...t, ranges: () => presentPrivateRanges(t.pid) }));
  return sendTaskRanges(tasks, sent, sink, { ...options, strict: false });
}

/**
 * The core of a round. `strict` is for frozen tasks, whose every listed page must be read: a task that vanished or
 * a page that cannot be read is then an error instead of something the next round catches up with.
 */
export async function sendTaskRanges(
  tasks: readonly TaskRanges[],
  sent: SentPages,
  sink: Writable,
  options: RoundOptions & {
    strict: boolean;
    /** Takes the ranges a read could not cover instead of `strict`'s error (they are then not sent). */
    onUnreadable?: (task: TaskRanges, ranges: readonly MemoryRange[]) => void;
  },
): Promise<RoundStats> {
  const strict = options.strict;
  const cpu0 = process.cpuUsage();
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH;
  const buffers = readBuffers(sent, batchBytes);
  const stats: RoundStats = { tasks: 0, scannedPages: 0, pages: 0, zeroPages: 0, bytes: 0, readMs: 0, cpuMs: 0 };
  // Page data goes to the sink as slices of the read buffers, not copies: a copy is fresh memory, a fault per 4 KiB
  // (~4 s of CPU per GiB in a first round here), and the SSH channel copies it into its packets anyway. A buffer is
  // read into again only once the sink has taken every slice of it (its write callbacks).
  const lent: Promise<void>[][] = buffers.map(() => []);
  const returned = async (k: number) => {
    const waits = lent[k]!;
    lent[k] = [];
    await Promise.all(waits).catch((err: unknown) => {
      throw new SinkFailed(err);
    });
  };
  const send = async (chunk: Buffer, from: number | undefined) => {
    if (sink.destroyed) throw sink.errored ?? new Error('the page stream closed');
    let ok = true;
    const taken = new Promise<void>((resolve, reject) => (ok = sink.write(chunk, (err) => (err ? reject(err) : resolve()))));
    taken.catch(() => undefined); // observed through `lent`, or the sink's own error
    if (from !== undefined) lent[from]!.push(taken);
    if (!ok) await drained(sink);
  };
  // Scattered dirty pages make many small records: gather them into ~1 MiB writes (each write is a frame on the
  // wire; joining them copies); large runs go out as they are. Flushed at the end of each batch, before its buffer
  // can be read into again.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let pendingFrom: number | undefined;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const single = pending.length === 1;
    const joined = single ? pending[0]! : Buffer.concat(pending, pendingBytes);
    const from = single ? pendingFrom : undefined;
    pending = [];
    pendingBytes = 0;
    pendingFrom = undefined;
    await send(joined, from);
  };
  /** `from`: the read buffer `b` is a slice of (undefined: `b` is the caller's to give away). */
  const write = async (b: Buffer, from?: number) => {
    stats.bytes += b.length;
    if (b.length >= COALESCE_BYTES) {
      await flush();
      await send(b, from);
      return;
    }
    pending.push(b);
    pendingBytes += b.length;
    if (from !== undefined) pendingFrom = from;
    if (pendingBytes >= COALESCE_BYTES) await flush();
  };

  // A read still filling a kept buffer when this round fails must end before anyone can reuse the buffer.
  let inFlight: Promise<unknown> | undefined;
  try {
    for (const task of tasks) {
      let ranges: readonly MemoryRange[];
      try {
        ranges = typeof task.ranges === 'function' ? await task.ranges() : task.ranges;
      } catch (err) {
        if (strict) throw unreadableError(task, (err as Error).message);
        continue; // exited since it was listed: the final dump will not have it either
      }
      stats.tasks++;
      const pages = sent.forTask(task.vpid);
      // Two buffers: the next batch is read and hashed while this one is compared and sent.
      const list = batches(ranges, batchBytes);
      const load = async (batch: MemoryRange[], into: Buffer) => {
        const t0 = Date.now();
        const read = await readMemory(task.pid, batch, { into });
        if (read.unreadable.length > 0 && options.onUnreadable) options.onUnreadable(task, read.unreadable);
        else if (strict && read.unreadable.length > 0) {
          throw unreadableError(task, `${read.unreadable.length} range(s) could not be read, first at 0x${read.unreadable[0]!.address.toString(16)}`);
        }
        const total = batch.reduce((n, r) => n + r.length, 0);
        const { hashes, zero } = await hashPages(read.data.subarray(0, total), { zero: true });
        stats.readMs += Date.now() - t0;
        return { read, hashes, zero };
      };
      let next = list.length > 0 ? returned(0).then(() => load(list[0]!, buffers[0]!)) : undefined;
      inFlight = next;
      for (let b = 0; b < list.length; b++) {
        const batch = list[b]!;
        let loaded;
        try {
          loaded = await next!;
        } catch (err) {
          if (err instanceof SinkFailed) throw err.cause; // the link failed, not the read
          if (strict) throw isFerryError(err) ? err : unreadableError(task, (err as Error).message);
          break; // the task exited mid-round
        }
        const k = (b + 1) % 2;
        next = b + 1 < list.length ? returned(k).then(() => load(list[b + 1]!, buffers[k]!)) : undefined;
        next?.catch(() => undefined); // awaited in the next iteration
        inFlight = next;
        const { read, hashes, zero } = loaded;
        const h = hashHalves(hashes);
        const unreadable = new Set<number>();
        for (const u of read.unreadable) {
          const first = Number(u.address / BigInt(PAGE_SIZE));
          for (let i = 0; i < u.length / PAGE_SIZE; i++) unreadable.add(first + i);
        }
        const skip = unreadable.size === 0 ? (k: number, page: number) => pages.holds(page, h, k) : (k: number, page: number) => unreadable.has(page) || pages.holds(page, h, k);

        // Walk the batch page by page; a record collects consecutive changed pages of one kind.
        let index = 0;
        for (const range of batch) {
          const first = Number(range.address / BigInt(PAGE_SIZE));
          const n = range.length / PAGE_SIZE;
          let i = 0;
          while (i < n) {
            if (skip(index + i, first + i)) {
              i++;
              continue;
            }
            const isZero = zero[index + i] === 1;
            let j = i + 1;
            while (j < n && j - i < MAX_RECORD_PAGES && !skip(index + j, first + j) && (zero[index + j] === 1) === isZero) j++;
            await write(encodeRecordHeader(isZero ? RecordKind.ZERO : RecordKind.DATA, task.vpid, BigInt(first + i) * BigInt(PAGE_SIZE), j - i));
            if (!isZero) await write(read.data.subarray((index + i) * PAGE_SIZE, (index + j) * PAGE_SIZE), b % 2);
            for (let k = i; k < j; k++) pages.record(first + k, h, index + k);
            stats.pages += j - i;
            if (isZero) stats.zeroPages += j - i;
            i = j;
          }
          index += n;
          stats.scannedPages += n;
        }
        await flush(); // what it gathered may point into this batch's buffer
      }
    }
  } catch (err) {
    await inFlight?.catch(() => undefined);
    // A sink that failed may still hold slices of the kept buffers: the next round gets new ones.
    releaseReadBuffers(sent);
    throw err;
  }
  try {
    await flush();
    // The buffers are kept for the next round: the sink must be done with them.
    await Promise.all(lent.map((_, k) => returned(k)));
  } catch (err) {
    releaseReadBuffers(sent);
    throw err instanceof SinkFailed ? err.cause : err;
  }
  const cpu = process.cpuUsage(cpu0);
  stats.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  return stats;
}

// Fresh memory costs a page fault per 4 KiB on first touch (~16 µs on this VM: ~250 ms for two 32 MiB buffers), so
// the buffers are made once per move and kept with its mirror, out of forked children: every process this one spawns
// (runc, ip, nsenter...) would otherwise make them copy-on-write again and the next round pay the same faults.
const scratch = new WeakMap<SentPages, Buffer[]>();

function readBuffers(sent: SentPages, bytes: number): Buffer[] {
  let buffers = scratch.get(sent);
  if (!buffers || buffers[0]!.length !== bytes) scratch.set(sent, (buffers = [kept(bytes), kept(bytes)]));
  return buffers;
}

/** A write of page data failed: the round fails with the sink's error, not as a read of memory that failed. */
class SinkFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('the page stream failed');
  }
}

/** Waits for 'drain'; rejects when the sink fails or closes instead (a dead sink never drains). */
function drained(sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      sink.off('drain', onDrain);
      sink.off('error', done);
      sink.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(sink.errored ?? new Error('the page stream closed'));
    sink.on('drain', onDrain);
    sink.on('error', done);
    sink.on('close', onClose);
  });
}

const kept = (bytes: number) => allocPageAligned(bytes, { keepOutOfForks: true });

/** The final round is over: the move keeps its mirror (the lazy restore's settle), not 64 MiB of read buffers. */
export function releaseReadBuffers(sent: SentPages): void {
  scratch.delete(sent);
}

function unreadableError(task: { pid: number; vpid: number }, detail: string): FerryError {
  return new FerryError('ERR_CRIU_DUMP_FAILED', `cannot read the memory of frozen process ${task.pid} (pid ${task.vpid} in the container): ${detail}`, {
    hint: 'The source resumes. Migrate with --strategy stop-and-copy, and report this with the container\'s /proc/PID/maps.',
  });
}

/** Splits ranges into batches of at most `limit` bytes (a range longer than that is cut at page boundaries). */
export function batches(ranges: readonly MemoryRange[], limit: number): MemoryRange[][] {
  const out: MemoryRange[][] = [];
  let current: MemoryRange[] = [];
  let size = 0;
  for (const r of ranges) {
    let address = r.address;
    let left = r.length;
    while (left > 0) {
      const take = Math.min(left, limit - size);
      current.push({ address, length: take });
      size += take;
      address += BigInt(take);
      left -= take;
      if (size === limit) {
        out.push(current);
        current = [];
        size = 0;
      }
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}
