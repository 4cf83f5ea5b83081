import type { ContainerInfo, RuntimeAdapter } from '@ferry/core';
import type { Journal } from '../journal/journal';
import type { AgentConnection } from '../protocol/agent-connection';
import type { MigrateDeps, MigrateRequest } from './migrate-deps';
import { MoveContext } from './move-context';
import { CLEAN_FIRST_MS } from './clean-first';
import { raiseNetworkAtFence } from './prepare-network';

/** A move that prepared a held network on the destination and fenced its source; `calls` records what happened, in order. */
function fencedMove(peer: { closed: boolean; raise?: () => Promise<unknown> }, cleanupRemote: () => Promise<{ kept: boolean }>) {
  const calls: string[] = [];
  const request = { destination: { name: 'h2' } } as unknown as MigrateRequest;
  const deps = {
    cleanupRemote: async () => {
      calls.push('cleanupRemote');
      return cleanupRemote();
    },
  } as unknown as MigrateDeps;
  const ctx = new MoveContext('m1', request, deps, {} as RuntimeAdapter, { ref: { id: 'ct1' } } as ContainerInfo, { dir: '/nonexistent' } as Journal);
  ctx.connection = {
    peer: {
      get closed() {
        return peer.closed;
      },
      request: async (method: string) => {
        calls.push(method);
        if (method === 'raise-network') return (await peer.raise?.()) ?? { raised: true };
        return { aborted: true };
      },
    },
    finishTunnels: () => void calls.push('finishTunnels'),
  } as unknown as AgentConnection;
  ctx.revert.add('clean the destination', () => ctx.cleanDestination());
  ctx.revert.add('reconnect the source network', () => void calls.push('unfence'));
  ctx.networkHeldAhead = true;
  return { ctx, calls };
}

test('a rollback after the raise cleans the destination before the source is unfenced, and only once', async () => {
  const { ctx, calls } = fencedMove({ closed: false }, async () => ({ kept: false }));
  raiseNetworkAtFence(ctx);
  await ctx.networkRaised;
  expect(await ctx.revert.fail()).toEqual([]);
  expect(calls).toEqual(['raise-network', 'abort', 'finishTunnels', 'unfence']);
});

test('with the agent gone, a new connection cleans the destination before the unfence', async () => {
  const { ctx, calls } = fencedMove({ closed: true, raise: () => Promise.reject(new Error('connection closed')) }, async () => ({ kept: false }));
  raiseNetworkAtFence(ctx);
  await ctx.networkRaised; // a failed raise leaves the links to the restore: never a rejection
  await ctx.revert.fail();
  expect(calls).toEqual(['raise-network', 'cleanupRemote', 'finishTunnels', 'unfence']);
});

test('a destination that cannot be reached keeps the source fenced for CLEAN_FIRST_MS at most; the last step still waits for it', async () => {
  jest.useFakeTimers();
  try {
    let reach!: () => void;
    const { ctx, calls } = fencedMove({ closed: true }, () => new Promise((resolve) => (reach = () => resolve({ kept: false }))));
    raiseNetworkAtFence(ctx);
    const failing = ctx.revert.fail();
    await jest.advanceTimersByTimeAsync(CLEAN_FIRST_MS - 1);
    expect(calls).not.toContain('unfence');
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toContain('unfence');
    let done = false;
    void failing.then(() => (done = true));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(done).toBe(false);
    reach();
    await failing;
    expect(calls.filter((c) => c === 'cleanupRemote')).toHaveLength(1);
  } finally {
    jest.useRealTimers();
  }
});

test('no raise (and no undo for it) when the destination did not prepare a held network', async () => {
  const { ctx, calls } = fencedMove({ closed: false }, async () => ({ kept: false }));
  ctx.networkHeldAhead = false;
  raiseNetworkAtFence(ctx);
  expect(ctx.networkRaised).toBeUndefined();
  await ctx.revert.fail();
  expect(calls).toEqual(['unfence', 'abort', 'finishTunnels']);
});
