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
import type { PageLinkResult } from '../../protocol/agent-messages';
import type { MoveContext } from '../move-context';
import type { Reverter } from '../reverter';
import { settleLazyRestore } from './settle-lazy-restore';
import { startLazyDump, type LazyDump } from './lazy-dump';
import type { MoveStrategy } from './strategy';

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
      // CRIU's page server dying (its dump fails) while pages are still wanted leaves a link that never moves again:
      // the destination would wait on it for good. Resetting the link makes its keeper give up at once, so the copy
      // goes and the source (its tasks held whole by the freezer) comes back.
      let settled = false;
      lazy!.done.catch((err: unknown) => {
        if (settled) return;
        ctx.emit({ type: 'warning', message: `post-copy of ${ctx.name}: the source's page server ended (${(err as Error).message}) before every page was sent; abandoning the page link` });
        ctx.connection.finishTunnels('reset');
      });
      try {
        await settleLazyRestore(ctx, fallback, {
          async complete() {
            settled = true;
            // A clean end tells CRIU every page was served: it ends the source tree.
            ctx.connection.finishTunnels('clean');
            await lazy!.done.catch((err: unknown) => ctx.warnings.push(`the source's lazy dump did not end cleanly (${(err as Error).message}); removing the source container`));
            ctx.journal.release('dump');
            return ctx.connection.tunnelledBytes();
          },
          async lost() {
            settled = true;
            // The destination removed its copy: CRIU lets the source go on a reset, the undo steps do the rest.
            ctx.connection.finishTunnels('reset');
            await lazy!.done.catch(() => undefined);
          },
        });
      } finally {
        settled = true;
      }
      ctx.sent(ctx.connection.tunnelledBytes());
    },
    report: () => ({ rounds: 0 }),
  };
}
