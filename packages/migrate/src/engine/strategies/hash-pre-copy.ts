/**
 * hash-pre-copy: rounds of changed pages while the container runs (precopy/hash-precopy.ts), then a lazy dump whose
 * frozen memory ferry reads itself and sends as the final round (precopy/frozen-round.ts); the dump's pages are then
 * marked "in parent" so the destination restores from what it holds. The lazy dump keeps the source frozen until
 * the destination has committed; ending its page server cleanly then makes CRIU end the source.
 *
 * With a lazy restore (plan.lazyRestore, `--lazy-restore`) the dump's pages keep their lazy marks instead: the
 * destination restores without writing the memory while frozen and fills the running copy from its own chain
 * (agent/local-page-fill.ts). The copy then depends on that fill, so the source stays held past the commit until
 * the destination says every page is in, as in post-copy (settle-lazy-restore.ts); if the destination loses its
 * copy, the source comes back.
 *
 * Page path: rounds and the final round over the agent connection. A new page path changes this module only.
 */
import { lazyToParent } from '@ferry/core';
import { endLazyDump } from '../../precopy/end-lazy-dump';
import { runFinalRound } from '../../precopy/frozen-round';
import { runRounds, type HashPrecopyResult } from '../../precopy/hash-precopy';
import type { PrecopyReport } from '../migrate-deps';
import type { MoveContext } from '../move-context';
import type { Reverter } from '../reverter';
import { settleLazyRestore } from './settle-lazy-restore';
import { startLazyDump, type LazyDump } from './lazy-dump';
import type { MoveStrategy } from './strategy';

export function hashPreCopy(ctx: MoveContext): MoveStrategy {
  let rounds: HashPrecopyResult | undefined;
  let report: PrecopyReport | undefined;
  let lazy: LazyDump | undefined;
  return {
    pauseBeforeDump: false,
    async beforeFreeze() {
      rounds = await ctx.phase(
        'precopy',
        () =>
          runRounds({
            peer: ctx.peer,
            migrationId: ctx.id,
            pid: ctx.container.pid!,
            policy: ctx.request.convergence,
            emit: (e) => ctx.emit(e),
            checkpoint: () => ctx.checkAbort(),
            lazyRestore: ctx.plan.lazyRestore === true,
          }),
        (r) => ({ bytes: r.bytes }),
      );
      ctx.sent(rounds.bytes);
      report = {
        outcome: rounds.outcome,
        reason: rounds.reason,
        rounds: rounds.rounds.map((r) => ({ round: r.round, pages: r.pages, bytes: r.bytes, scannedPages: r.scannedPages, zeroPages: r.zeroPages, ms: r.ms, readMs: r.readMs, cpuMs: r.cpuMs })),
        finalPages: 0,
        finalPagesHeld: 0,
      };
    },
    async dump() {
      lazy = await startLazyDump(ctx);
      // The final round starts reading as soon as the tree is frozen, while CRIU still dumps.
      const finalRound = runFinalRound({
        peer: ctx.peer,
        migrationId: ctx.id,
        initPid: ctx.container.pid!,
        imagesDir: ctx.imagesDir,
        sent: rounds!.sent,
        freezerPath: ctx.container.freezerPath,
        dumpReady: lazy.ready,
      });
      finalRound.catch(() => undefined);
      await ctx.phase('checkpoint', () => lazy!.ready);
      const final = await ctx.phase('final-round', () => finalRound, (r) => ({ bytes: r.bytes }));
      ctx.sent(final.bytes, true);
      if (!ctx.plan.lazyRestore) await ctx.phase('mark-held', () => lazyToParent(ctx.imagesDir));
      report!.finalPages = final.lazyPages;
      report!.finalPagesHeld = Math.max(0, final.lazyPages - final.pages);
      report!.finalRound = { pages: final.pages, bytes: final.bytes, readMs: final.readMs, cpuMs: final.cpuMs, latePages: final.latePages, overlappedDump: final.early };
    },
    async restoreParams() {
      return ctx.plan.lazyRestore ? { localLazyPages: true } : {};
    },
    async afterCommit(fallback: Reverter) {
      if (!ctx.plan.lazyRestore) return endSource();
      // The copy runs on pages still being filled from the destination's chain: the source stays held until then.
      await settleLazyRestore(ctx, fallback, {
        async complete() {
          await endSource();
          return 0;
        },
        async lost() {
          /* the dump still holds the source: the undo steps stop it */
        },
      });
    },
    report: () => ({ rounds: rounds?.rounds.length ?? 0, precopy: report }),
  };

  /** The lazy dump still holds the frozen source; ending its page server cleanly makes CRIU end it. */
  async function endSource(): Promise<void> {
    try {
      await endLazyDump(() => lazy!.dial());
      await lazy!.done;
      ctx.journal.release('dump');
    } catch (err) {
      ctx.warnings.push(`the source's lazy dump did not end cleanly (${(err as Error).message}); removing the source container`);
    }
  }
}
