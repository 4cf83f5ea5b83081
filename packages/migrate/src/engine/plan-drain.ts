/**
 * Which container goes where when a host is drained: running containers only, spread round-robin over the
 * destinations in the order given (the operator lists the preferred ones first). Pure, so the plan shown to the
 * operator is exactly the one executed, and tested.
 */
import type { ContainerInfo } from '@ferry/core';

export interface DrainAssignment {
  container: string;
  runtime: string;
  destination: string;
}

export interface DrainPlan {
  moves: DrainAssignment[];
  /** Containers left where they are, with the reason. */
  skipped: { container: string; runtime: string; reason: string }[];
}

export function planDrain(containers: readonly ContainerInfo[], destinations: readonly string[]): DrainPlan {
  if (destinations.length === 0) throw new TypeError('planDrain needs at least one destination');
  const sorted = [...containers].sort((a, b) => a.ref.id.localeCompare(b.ref.id) || a.ref.runtime.localeCompare(b.ref.runtime));
  const moves: DrainAssignment[] = [];
  const skipped: DrainPlan['skipped'] = [];
  for (const c of sorted) {
    if (c.state !== 'running') {
      skipped.push({ container: c.ref.id, runtime: c.ref.runtime, reason: `${c.state}, not running` });
      continue;
    }
    moves.push({ container: c.ref.id, runtime: c.ref.runtime, destination: destinations[moves.length % destinations.length]! });
  }
  return { moves, skipped };
}

/** Runs `task` for every item with at most `limit` at a time; never rejects, returns each outcome in order. */
export async function boundedAll<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<({ ok: true; value: R } | { ok: false; error: unknown })[]> {
  const results: ({ ok: true; value: R } | { ok: false; error: unknown })[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      try {
        results[index] = { ok: true, value: await task(items[index]!) };
      } catch (error) {
        results[index] = { ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
