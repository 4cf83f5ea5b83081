/**
 * Before the freeze: the destination makes the copy's network namespace now (links down, traffic held), so that the
 * frozen restore only joins it instead of spending a dozen `ip`/`iptables-restore` processes of the downtime on it
 * (runc; docs/network-switchover.md). Runtimes without a namespace of their own to re-create skip it.
 *
 * Right after the source's fence, the destination raises that namespace's links behind the hold: from then on the
 * clients' segments reach the copy's namespace and wait there for the restored sockets, delivered at the release,
 * instead of being lost at the fenced source and retransmitted only when each client's timer fires (backing off
 * 0.2, 0.4, 0.8 s...: raised at the restore, 3 of 6 benchmark trials had a second silence of 0.16-1.5 s right after
 * the first answers; docs/network-switchover.md).
 */
import type { RaiseNetworkResult } from '@ferry/core';
import type { PrepareNetworkParams, PrepareNetworkResult } from '../protocol/agent-messages';
import type { MoveContext } from './move-context';
import { CLEAN_FIRST_MS, settleWithin } from './clean-first';

export async function prepareNetwork(ctx: MoveContext): Promise<void> {
  const network = await ctx.adapter.networkOf?.(ctx.name);
  if (!network) return;
  ctx.network = network;
  const params: PrepareNetworkParams = { migrationId: ctx.id, network, ...(ctx.request.clone?.readdress ? { readdress: ctx.request.clone.readdress } : {}) };
  const prepared = await ctx.phase('prepare-network', () => ctx.peer.request<PrepareNetworkResult>('prepare-network', params));
  ctx.networkHeldAhead = prepared.prepared && prepared.held === true;
}

/**
 * Right before the freeze (the rounds may have taken minutes): the network as it is now, for the dump's record
 * (lazy-dump.ts passes it on). An address that changed since prepare-network then still shows at the restore, which
 * makes the namespace again instead of joining the prepared one (runc-prepared-network.ts).
 */
export async function refreshNetwork(ctx: MoveContext): Promise<void> {
  if (ctx.network) ctx.network = await ctx.adapter.networkOf?.(ctx.name);
}

/**
 * The source is fenced: asks the destination to raise the held namespace's links, without waiting (the dump goes on
 * meanwhile; the restore waits for `ctx.networkRaised`). Not raised (an older agent, no hold), the restore raises
 * them as before. Its undo cleans the destination before the source's links come up again (the undo steps run
 * last-first): the two would answer for the same addresses and MAC, and the bridge would send the clients to
 * whichever spoke last. With the agent dead that takes a new connection, given CLEAN_FIRST_MS (clean-first.ts).
 */
export function raiseNetworkAtFence(ctx: MoveContext): void {
  if (!ctx.networkHeldAhead) return;
  ctx.revert.add('take the copy off the LAN', () => settleWithin(ctx.cleanDestination(), CLEAN_FIRST_MS));
  ctx.networkRaised = ctx.peer.request<RaiseNetworkResult>('raise-network', { migrationId: ctx.id }).then(
    () => undefined,
    () => undefined,
  );
}
