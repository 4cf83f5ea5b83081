/**
 * A lazy restore's detached page relay (local-page-fill.ts), as whoever settles the move sees it: the live agent,
 * or the next agent after that one died (orphaned-pages.ts). The relay's report.json is the word on the fill; a
 * relay still running without one is still filling (or still holding a failed copy's userfaultfds: its report then
 * says so); a relay gone without one was killed, and CRIU's daemon and its log decide as in post-copy.
 */
import { killIfSame, type ProcessId } from '../journal/proc-identity';
import type { RelayOutcome } from '../pages/relay-process';
import { waitGone } from '../recovery/end-dump';

export type FillVerdict = { pages: 'complete' } | { pages: 'lost'; why: string } | { pages: 'pending' } | { pages: 'unknown' };

/** What the relay's report (and whether it still runs) says about the fill; `unknown`: CRIU's daemon decides. */
export function fillVerdict(outcome: RelayOutcome | undefined, relayRuns: boolean): FillVerdict {
  if (outcome?.ok) return { pages: 'complete' };
  if (outcome) return { pages: 'lost', why: `its page relay failed: ${outcome.message}` };
  return relayRuns ? { pages: 'pending' } : { pages: 'unknown' };
}

/**
 * Lets relays go once the copy is gone or whole (SIGTERM: a failed one kills its daemon and drops its copies of the
 * userfaultfds), and waits until they have: the move's directory, their working place, is removed next.
 */
export async function endFillRelays(relays: readonly ProcessId[]): Promise<void> {
  for (const relay of relays) killIfSame(relay, 'SIGTERM');
  if (await waitGone(relays)) return;
  for (const relay of relays) killIfSame(relay);
  await waitGone(relays);
}
