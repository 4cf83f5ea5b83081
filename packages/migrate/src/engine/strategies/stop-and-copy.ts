/**
 * Stop-and-copy: the skeleton pauses the container, CRIU dumps it (leaving it running, so it stays frozen by the
 * pause), and the images go over. By default the dump streams its memory straight into a CRIU page server on the
 * destination through a tunnel, instead of writing it here and sending it afterwards.
 */
import type { CheckpointStats } from '@ferry/core';
import type { MoveContext } from '../move-context';
import type { MoveStrategy } from './strategy';

/** The frozen dump of stop-and-copy and CRIU pre-copy: runc/LXC/Docker checkpoint with leaveRunning. */
export async function dumpLeavingRunning(
  ctx: MoveContext,
  extra: { pageServer?: { address: string; port: number }; parentImage?: string },
): Promise<CheckpointStats> {
  const { imagesDir, workDir } = ctx.dumpDirs();
  ctx.journal.hold({ kind: 'dump', marker: imagesDir, initPid: ctx.container.pid });
  const dumped = await ctx.adapter.checkpoint(ctx.container.ref, { imagesDir, workDir, leaveRunning: true, ...ctx.criuFlags, ...extra, signal: ctx.request.signal });
  ctx.journal.release('dump');
  return dumped.stats;
}

export function stopAndCopy(ctx: MoveContext): MoveStrategy {
  let pageServer: { address: string; port: number } | undefined;
  let closeTunnel = () => undefined as void;
  return {
    pauseBeforeDump: true,
    async beforeFreeze() {
      if (!ctx.plan.streamPages) return;
      // The destination's page server and the tunnel to it are ready before the freeze.
      const { port } = await ctx.peer.request<{ port: number }>('page-server', { migrationId: ctx.id });
      const forward = await ctx.connection.forwardToRemote(port);
      const step = ctx.revert.add('close the page tunnel', () => forward.close());
      closeTunnel = () => {
        forward.close();
        step.release();
      };
      pageServer = { address: '127.0.0.1', port: forward.localPort };
    },
    async dump() {
      const before = ctx.connection.tunnelledBytes();
      const bytes = await ctx.phase(
        'checkpoint',
        async () => {
          await dumpLeavingRunning(ctx, { pageServer });
          closeTunnel(); // the dump has sent every page
          return { bytes: ctx.connection.tunnelledBytes() - before };
        },
        (r) => (pageServer ? r : {}),
      );
      ctx.sent(bytes.bytes, true);
    },
    report: () => ({ rounds: 0 }),
  };
}
