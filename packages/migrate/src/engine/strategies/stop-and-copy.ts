/**
 * Stop-and-copy: the skeleton pauses the container, CRIU dumps it (leaving it running, so it stays frozen by the
 * pause), and the images go over. By default the dump streams its memory straight into a CRIU page server on the
 * destination through a tunnel, instead of writing it here and sending it afterwards.
 */
import type { CheckpointStats } from '@ferry/core';
import type { MoveContext } from '../move-context';
import { privatePageClient, type PrivatePageClient } from '../../pages/private-page-client';
import type { MoveStrategy } from './strategy';

/** The frozen dump of stop-and-copy and CRIU pre-copy: runc/LXC/Docker checkpoint with leaveRunning. */
export async function dumpLeavingRunning(
  ctx: MoveContext,
  extra: { pageServer?: { address: string; port: number }; netnsPath?: string; parentImage?: string },
): Promise<CheckpointStats> {
  const { imagesDir, workDir } = ctx.dumpDirs();
  ctx.journal.hold({ kind: 'dump', marker: imagesDir, initPid: ctx.container.pid });
  const dumped = await ctx.adapter.checkpoint(ctx.container.ref, { imagesDir, workDir, leaveRunning: true, ...ctx.criuFlags, ...extra, signal: ctx.request.signal });
  ctx.journal.release('dump');
  return dumped.stats;
}

export function stopAndCopy(ctx: MoveContext): MoveStrategy {
  let link: PrivatePageClient | undefined;
  return {
    pauseBeforeDump: true,
    async beforeFreeze() {
      if (!ctx.plan.streamPages) return;
      // The destination's page server and the link to it are ready before the freeze; both ends are private.
      link = await privatePageClient(ctx);
    },
    async dump() {
      const before = ctx.connection.tunnelledBytes();
      const bytes = await ctx.phase(
        'checkpoint',
        async () => {
          await dumpLeavingRunning(ctx, link ? { pageServer: link.pageServer, netnsPath: link.netnsPath } : {});
          link?.close(); // the dump has sent every page
          return { bytes: ctx.connection.tunnelledBytes() - before };
        },
        (r) => (link ? r : {}),
      );
      ctx.sent(bytes.bytes, true);
    },
    report: () => ({ rounds: 0 }),
  };
}
