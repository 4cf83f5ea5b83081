/**
 * Post-copy: CRIU dumps all but the memory and holds the frozen source while its page server waits; the destination
 * restores lazily and pulls every page through a tunnel to that page server. The destination commits as soon as the
 * restored copy runs (its network is released then), so the transfer of the remaining pages happens after the point
 * of no return: from then on the container needs both hosts until the last page has arrived.
 *
 * Page path: CRIU's page server in a private network namespace (pages/dump-netns.ts), joined through the agent's
 * SSH connection to a unix socket in a 0700 directory on the destination, whose other end is the lazy-pages
 * daemon's --ps-socket (pages/destination-link.ts): no other local user can read a page or end the dump. The link
 * is resumable (transport/resumable-tunnel.ts, pages/page-link-keeper.ts): a broken SSH connection is replaced and
 * the stream goes on; the restored tasks that fault meanwhile wait. Only when the destination gives up (no link for
 * its grace period: the source host counts as gone) or the lazy-pages daemon fails does it remove its copy (it would
 * run on pages that read back as zeros) and say `lost`; the tunnel to CRIU is then reset, CRIU lets the source tasks
 * go, and the source's undo steps bring it back on its network: one intact copy, the source. Until the destination
 * has said `complete` or `lost`, the tunnel stays open and the source stays held (never guess).
 */
import { FerryError, isFerryError } from '@ferry/core';
import type { PageLinkResult } from '../../protocol/agent-messages';
import type { MoveContext } from '../move-context';
import type { Reverter } from '../reverter';
import { endDump } from '../../recovery/end-dump';
import { startLazyDump, type LazyDump } from './lazy-dump';
import type { MoveStrategy } from './strategy';

/**
 * How often the destination is asked about the pages while the agent connection is gone: soon at first, then less
 * often (each ask starts an agent there, CPU the lazy-pages daemon, busy with a resumed transfer, needs more).
 */
const STATUS_RETRY_MS = [1_000, 2_000, 3_000, 5_000];

export function postCopy(ctx: MoveContext): MoveStrategy {
  let lazy: LazyDump | undefined;
  return {
    pauseBeforeDump: false,
    async dump() {
      lazy = await startLazyDump(ctx);
      await ctx.phase('checkpoint', () => lazy!.ready);
    },
    async restoreParams() {
      // The link is private at both ends (pages/dump-netns.ts, pages/destination-link.ts).
      const { socketPath, resumable } = await ctx.peer.request<PageLinkResult>('page-link', { migrationId: ctx.id });
      await ctx.connection.tunnelToSocket(socketPath, await lazy!.dial(), {
        remoteEnd: resumable ? 'resume' : 'hold',
        onLinkLost: (attempt, error) => {
          if (attempt % 10 !== 1) return;
          ctx.emit({ type: 'warning', message: error ? `post-copy of ${ctx.name}: cannot reach the page link on ${ctx.request.destination.name} yet (${error.message}); retrying, the source stays held` : `post-copy of ${ctx.name}: the page link to ${ctx.request.destination.name} broke; resuming it over a new connection` });
        },
      });
      return { lazyPagesLink: true };
    },
    async afterCommit(fallback: Reverter) {
      await ctx.phase(
        'transfer-pages',
        async () => {
          const { outcome, cause } = await pagesOutcome(ctx);
          if (outcome === 'complete') {
            // A clean end tells CRIU every page was served: it ends the source tree.
            ctx.connection.finishTunnels('clean');
            await lazy!.done.catch((err: unknown) => ctx.warnings.push(`the source's lazy dump did not end cleanly (${(err as Error).message}); removing the source container`));
            ctx.journal.release('dump');
            return { bytes: ctx.connection.tunnelledBytes() };
          }
          // The destination's own reason when it gave one (the undo below closes the connection).
          const code = isFerryError(cause) ? cause.code : ctx.connection.peer.closed ? 'ERR_TRANSPORT_CLOSED' : 'ERR_CRIU_RESTORE_FAILED';
          // The destination removed its copy: CRIU lets the source go on a reset, the undo steps do the rest.
          ctx.connection.finishTunnels('reset');
          await lazy!.done.catch(() => undefined);
          await fallback.fail();
          // CRIU lets the tasks go after a failed lazy transfer without unlocking their sockets or the network.
          const dump = ctx.journal.state().holds.get('dump');
          if (dump) await endDump(dump, ctx.container);
          ctx.journal.append({ t: 'note', message: 'post-copy: the destination lost its copy; the source runs again' });
          throw new FerryError(
            code,
            `post-copy was interrupted after ${ctx.name} started on ${ctx.request.destination.name} (${(cause as Error | undefined)?.message ?? 'pages lost'}); the destination removed its incomplete copy and CRIU resumed the source, which holds the container again`,
            { hint: 'Clients may have seen their TCP connections reset. Check the link between the hosts and migrate again.', cause },
          );
        },
        (r) => r,
      );
      ctx.sent(ctx.connection.tunnelledBytes());
    },
    report: () => ({ rounds: 0 }),
  };
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
      if (attempt % 10 === 1) ctx.emit({ type: 'warning', message: `post-copy of ${ctx.name}: cannot reach ${ctx.request.destination.name} to learn whether every page arrived (${(err as Error).message}); the source stays held` });
    }
    await new Promise((r) => setTimeout(r, STATUS_RETRY_MS[Math.min(attempt - 1, STATUS_RETRY_MS.length - 1)]));
  }
}
