/**
 * Before the freeze: the destination makes the copy's network namespace now (links down, traffic held), so that the
 * frozen restore only joins it instead of spending a dozen `ip`/`iptables-restore` processes of the downtime on it
 * (runc; docs/network-switchover.md). Runtimes without a namespace of their own to re-create skip it.
 */
import type { PrepareNetworkParams, PrepareNetworkResult } from '../protocol/agent-messages';
import type { MoveContext } from './move-context';

export async function prepareNetwork(ctx: MoveContext): Promise<void> {
  const network = await ctx.adapter.networkOf?.(ctx.name);
  if (!network) return;
  const params: PrepareNetworkParams = { migrationId: ctx.id, network, ...(ctx.request.clone?.readdress ? { readdress: ctx.request.clone.readdress } : {}) };
  await ctx.phase('prepare-network', () => ctx.peer.request<PrepareNetworkResult>('prepare-network', params));
}
