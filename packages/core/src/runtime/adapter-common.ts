/** Small pieces every runtime adapter needs in the same form. */
import { privateImageFiles } from '../image/image-dir';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointStats, ContainerInfo } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { imageDirBytes } from '../image/image-set';
import { readStats } from '../image/image-records';

/** What a checkpoint cost: CRIU's own dump stats (when it wrote them to the work dir) and the images' size. */
export async function checkpointStats(imagesDir: string, workDir: string, totalMs: number): Promise<CheckpointStats> {
  privateImageFiles(imagesDir); // every dump ends here; CRIU wrote its images 0644
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

/** A restore's first check: ERR_IMAGE_NOT_FOUND unless `imagesDir` holds CRIU images. */
export function assertImagesDir(imagesDir: string): void {
  if (!existsSync(join(imagesDir, 'inventory.img'))) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} holds no CRIU images (no inventory.img)`, {
      hint: 'Pass the directory a checkpoint wrote.',
      details: { imagesDir },
    });
  }
}

/** The container as a dump that ended it leaves it: stopped, no pid, no freezer. */
export function stoppedAfterDump(before: ContainerInfo): ContainerInfo {
  const { pid: _pid, freezerPath: _freezer, ...rest } = before;
  return { ...rest, state: 'stopped' };
}
