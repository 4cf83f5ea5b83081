/**
 * The last round of hash-based pre-copy, on the frozen container: CRIU has dumped everything but the lazy pages
 * (`--lazy-pages`), and ferry reads exactly those pages from the frozen tasks, sends the ones the destination does
 * not hold with that content, and marks them all "in parent". CRIU never writes or reads the bulk of the memory
 * while the container is frozen: the dump's cost no longer grows with its size.
 */
import type { Writable } from 'node:stream';
import { FerryError, lazyRanges } from '@ferry/core';
import { PAGE_SIZE } from '@ferry/native';
import { containerTasks } from './container-tasks';
import { sendTaskRanges, type RoundStats, type SentPages } from './memory-rounds';

export async function sendFrozenRound(initPid: number, imagesDir: string, sent: SentPages, sink: Writable): Promise<RoundStats & { lazyPages: number }> {
  const lazy = await lazyRanges(imagesDir);
  const live = new Map((await containerTasks(initPid)).map((t) => [t.vpid, t.pid]));
  const tasks = [...lazy.tasks].map(([vpid, ranges]) => {
    const pid = live.get(vpid);
    if (pid === undefined) {
      throw new FerryError('ERR_CRIU_DUMP_FAILED', `the dump holds process ${vpid} of the container, but no such process is frozen on this host`, {
        hint: 'The source resumes. Migrate with --strategy stop-and-copy.',
      });
    }
    return { pid, vpid, ranges: ranges.map((r) => ({ address: r.vaddr, length: r.nrPages * PAGE_SIZE })) };
  });
  const stats = await sendTaskRanges(tasks, sent, sink, { strict: true });
  return { ...stats, lazyPages: lazy.pages };
}
