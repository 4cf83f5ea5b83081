/**
 * After the commit of a lazy restore (post-copy, and hash-pre-copy's lazy restore from the destination's own pages):
 * the copy runs while its memory is still being filled, so the source stays held by its lazy dump until the
 * destination says every page is in. `complete`: the strategy ends the source. `lost`: the destination removed its
 * copy (it would run on pages that read back as zeros), the source's undo steps bring it back, and the move fails
 * with the destination's reason. Until the destination has said one or the other, the source stays held (never guess).
 */
import { FerryError, isFerryError } from '@ferry/core';
import { endDump } from '../../recovery/end-dump';
import type { MoveContext } from '../move-context';
import type { Reverter } from '../reverter';

/**
 * How often the destination is asked about the pages while the agent connection is gone: soon at first, then less
 * often (each ask starts an agent there, CPU the lazy-pages daemon, busy with a resumed transfer, needs more).
 */
const STATUS_RETRY_MS = [1_000, 2_000, 3_000, 5_000];

export interface LazyRestoreEnds {
  /** Every page is in the copy: end the source (resolves with the phase's bytes). */
  complete(): Promise<number>;
  /** The copy is gone: let the source's dump go before the undo steps run. */
  lost(): Promise<void>;
}

export async function settleLazyRestore(ctx: MoveContext, fallback: Reverter, ends: LazyRestoreEnds): Promise<void> {
  await ctx.phase(
    'transfer-pages',
    async () => {
      const { outcome, cause } = await pagesOutcome(ctx);
      if (outcome === 'complete') return { bytes: await ends.complete() };
      // The destination's own reason when it gave one (the undo below closes the connection).
      const code = isFerryError(cause) ? cause.code : ctx.connection.peer.closed ? 'ERR_TRANSPORT_CLOSED' : 'ERR_CRIU_RESTORE_FAILED';
      await ends.lost();
      await fallback.fail();
      // CRIU lets the tasks go after a failed lazy transfer without unlocking their sockets or the network.
      const dump = ctx.journal.state().holds.get('dump');
      if (dump) await endDump(dump, ctx.container);
      ctx.journal.append({ t: 'note', message: `${ctx.plan.strategy}: the destination lost its copy; the source runs again` });
      throw new FerryError(
        code,
        `${ctx.plan.strategy} was interrupted after ${ctx.name} started on ${ctx.request.destination.name} (${(cause as Error | undefined)?.message ?? 'pages lost'}); the destination removed its incomplete copy and CRIU resumed the source, which holds the container again`,
        { hint: 'Clients may have seen their TCP connections reset. Check the link between the hosts and migrate again.', cause },
      );
    },
    (r) => r,
  );
}

/**
 * Whether every page arrived, as the destination says. The agent answers `await-pages` when its lazy-pages daemon
 * ends; on any failure the destination's recorded word is asked for over new connections until it has one.
 */
async function pagesOutcome(ctx: MoveContext): Promise<{ outcome: 'complete' | 'lost'; cause?: unknown }> {
  let cause: unknown;
  try {
    await ctx.peer.request('await-pages', { migrationId: ctx.id });
    return { outcome: 'complete' };
  } catch (err) {
    // Whatever the failure, only the destination's recorded word counts (it says `lost` once its copy is removed).
    cause = err;
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const status = await ctx.deps.remoteStatus(ctx.request.destination, ctx.id);
      if (status.pages === 'complete' || status.pages === 'lost') return { outcome: status.pages, cause };
    } catch (err) {
      if (attempt % 10 === 1) ctx.emit({ type: 'warning', message: `${ctx.plan.strategy} of ${ctx.name}: cannot reach ${ctx.request.destination.name} to learn whether every page arrived (${(err as Error).message}); the source stays held` });
    }
    await new Promise((r) => setTimeout(r, STATUS_RETRY_MS[Math.min(attempt - 1, STATUS_RETRY_MS.length - 1)]));
  }
}
