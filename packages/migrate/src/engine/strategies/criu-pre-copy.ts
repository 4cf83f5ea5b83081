/**
 * CRIU pre-copy: pre-dumps with the kernel's memory tracking while the container runs (precopy/criu-precopy.ts),
 * then the frozen dump of stop-and-copy holding only what changed since the last round.
 */
import { finalDumpReport, processCpuMs, runCriuPreCopy, type CriuPreCopyResult } from '../../precopy/criu-precopy';
import type { PrecopyReport } from '../migrate-deps';
import type { MoveContext } from '../move-context';
import { dumpLeavingRunning } from './stop-and-copy';
import type { MoveStrategy } from './strategy';

export function criuPreCopy(ctx: MoveContext): MoveStrategy {
  let result: CriuPreCopyResult | undefined;
  let report: PrecopyReport | undefined;
  return {
    pauseBeforeDump: true,
    async beforeFreeze() {
      const { adapter, container, request } = ctx;
      result = await ctx.phase(
        'precopy',
        () =>
          runCriuPreCopy(
            ctx.journal.dir,
            {
              preDump: async (imagesDir, workDir, parentImage) =>
                (await adapter.checkpoint(container.ref, { imagesDir, workDir, preDump: true, ...(parentImage ? { parentImage } : {}), ...ctx.criuFlags, signal: request.signal })).stats,
              send: async (part, dir) => (await ctx.upload(part, dir)).bytes,
              onRound: (r, step) =>
                ctx.emit({ type: 'precopy-round', round: r.round, pages: r.pages, bytes: r.bytes, scannedPages: r.scannedPages, ms: r.ms, cpuMs: r.cpuMs, next: step.action, reason: step.reason }),
              signal: request.signal,
            },
            request.convergence,
          ),
        (r) => ({ bytes: r.rounds.reduce((sum, round) => sum + round.bytes, 0) }),
      );
      ctx.sent(result.rounds.reduce((sum, round) => sum + round.bytes, 0));
      report = {
        outcome: result.outcome,
        reason: result.reason,
        rounds: result.rounds.map(({ round, pages, bytes, scannedPages, zeroPages, ms, readMs, cpuMs }) => ({ round, pages, bytes, scannedPages, zeroPages, ms, readMs, cpuMs })),
        finalPages: 0,
        finalPagesHeld: 0,
      };
    },
    async dump() {
      await ctx.phase('checkpoint', async () => {
        const cpuBefore = processCpuMs();
        const stats = await dumpLeavingRunning(ctx, { parentImage: result!.parentImage });
        Object.assign(report!, finalDumpReport(stats, processCpuMs() - cpuBefore));
      });
    },
    report: () => ({ rounds: result?.rounds.length ?? 0, precopy: report }),
  };
}
