/** Small pieces every runtime adapter needs in the same form. */
import { join } from 'node:path';
import type { CheckpointStats } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { imageDirBytes } from '../image/image-set';
import { readStats } from '../image/image-records';

/** What a checkpoint cost: CRIU's own dump stats (when it wrote them to the work dir) and the images' size. */
export async function checkpointStats(imagesDir: string, workDir: string, totalMs: number): Promise<CheckpointStats> {
  const stats: CheckpointStats = { imageBytes: await imageDirBytes(imagesDir), totalMs };
  try {
    const dump = (await readStats(join(workDir, 'stats-dump'))).dump;
    if (dump) {
      stats.frozenMs = dump.frozenMs;
      stats.memdumpMs = dump.memdumpMs;
      stats.memwriteMs = dump.memwriteMs;
      stats.pagesWritten = dump.pagesWritten;
      stats.pagesSkippedParent = dump.pagesSkippedParent;
    }
  } catch {
    /* no stats-dump (old CRIU, pre-dump without stats): the measured fields stay */
  }
  return stats;
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new FerryError('ERR_ABORTED', `${what} interrupted`, { hint: 'Run the command again when ready.' });
}
