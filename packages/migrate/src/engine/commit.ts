/**
 * The two-phase commit, source side: journal `commit-intent`, ask the destination to commit (it decides once, and
 * is the authority), journal `committed`. A lost answer is asked for over new connections; the destination's
 * `--cleanup` turns an undecided move into `aborted`, so the answer is final. Unreachable: ERR_MOVE_IN_DOUBT, the
 * source stays frozen and the journal open for recovery.
 */
import { FerryError } from '@ferry/core';
import type { MoveContext } from './move-context';

/** How long a lost commit answer is asked after before the move is declared in doubt. */
const COMMIT_STATUS_ATTEMPTS = 5;
const COMMIT_STATUS_RETRY_MS = 2_000;

/** The two-phase commit; returns once this host has journaled `committed`. */
export async function commit(ctx: MoveContext): Promise<void> {
  await ctx.phase('commit', async () => {
    ctx.journal.append({ t: 'commit-intent' });
    try {
      await ctx.peer.request('commit', { migrationId: ctx.id });
      return;
    } catch (err) {
      // An answer from the agent is its decision: not committed. A lost answer must be asked for.
      if (!ctx.peer.closed) throw err;
      if (await committedThere(ctx, err)) return;
      throw new FerryError('ERR_TRANSPORT_CLOSED', `the connection to ${ctx.request.destination.name} was lost before it committed ${ctx.name} (${(err as Error).message})`, {
        hint: 'The source resumes; check the link between the hosts and migrate again.',
        cause: err,
      });
    }
  });
  ctx.journal.append({ t: 'committed' });
  ctx.pastPointOfNoReturn = true;
}

/**
 * Asks the destination, over new connections, whether it committed; an undecided move is aborted there by the
 * same call, so the answer is final. Throws ERR_MOVE_IN_DOUBT when the destination cannot be reached.
 */
async function committedThere(ctx: MoveContext, lost: unknown): Promise<boolean> {
  let last: unknown = lost;
  for (let attempt = 1; attempt <= COMMIT_STATUS_ATTEMPTS; attempt++) {
    try {
      return (await ctx.deps.cleanupRemote(ctx.request.destination, ctx.id)).kept;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, COMMIT_STATUS_RETRY_MS));
    }
  }
  ctx.connection.close();
  const how = ctx.adapter.manualCommands(ctx.name);
  throw new FerryError(
    'ERR_MOVE_IN_DOUBT',
    `the destination ${ctx.request.destination.name} restored ${ctx.name} but its answer to commit was lost, and it cannot be asked (${(last as Error).message}); the source copy is left frozen`,
    {
      hint: `Run \`ferry recover ${ctx.id}\` once ${ctx.request.destination.name} is reachable. By hand: if ${ctx.name} runs there, \`${how.remove}\` here; if not, \`${how.thaw}\`.`,
      cause: lost,
    },
  );
}
