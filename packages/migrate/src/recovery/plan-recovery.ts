/**
 * What to do with a move whose owner died, decided from its journal (and, when the journal cannot tell, from the
 * destination's word). Pure: every case is unit-tested. The rules (docs/design/crash-safety.md §3):
 * - before `commit-intent`: roll back (the destination never committed);
 * - `commit-intent` without `committed`: the destination decides; unreachable: in doubt, the source stays frozen;
 * - `committed`: finish (post-copy and a lazy restore: only once the destination says every page arrived; `lost`: the destination
 *   removed its copy, so the source, still held, comes back).
 */
import type { JournalState } from '../journal/journal';
import type { RemoteOutcome } from '../protocol/agent-messages';

export type RecoveryAction =
  | { kind: 'leave'; why: string }
  | { kind: 'ask-destination'; why: string; sideEffectFree: boolean }
  | { kind: 'roll-back'; why: string; cleanDestination: boolean }
  | { kind: 'finish'; why: string }
  | { kind: 'in-doubt'; why: string };

export interface RecoveryFacts {
  ownerAlive: boolean;
  /** The destination's answer, once asked; 'unreachable' when it could not be. */
  remote?: RemoteOutcome | 'unreachable';
}

export function planRecovery(state: JournalState, facts: RecoveryFacts): RecoveryAction {
  if (state.done) return { kind: 'leave', why: `over (${state.done.outcome})` };
  if (state.role !== 'source') return { kind: 'leave', why: 'a destination journal: the agent recovers it' };
  if (facts.ownerAlive) return { kind: 'leave', why: 'in flight: its guardian runs' };
  if (!state.commitIntent) {
    return { kind: 'roll-back', why: `interrupted before the commit (phase ${state.phase ?? 'none'})`, cleanDestination: state.holds.has('prepared') };
  }
  const remote = facts.remote;
  if (!state.committed) {
    // Asking is final here: `--cleanup` aborts an undecided move, so the answer cannot change after it is given.
    if (remote === undefined) return { kind: 'ask-destination', why: 'the commit was sent, its answer never journaled', sideEffectFree: false };
    if (remote === 'unreachable') return { kind: 'in-doubt', why: `the commit was sent and ${state.peer} cannot be asked whether it committed` };
    if (remote.decision === 'committed') return { kind: 'finish', why: `${state.peer} committed` };
    return { kind: 'roll-back', why: `${state.peer} did not commit`, cleanDestination: false };
  }
  if ((state.strategy === 'post-copy' || state.lazyRestore) && state.holds.has('dump')) {
    const what = state.lazyRestore ? `${state.strategy} restored lazily` : state.strategy;
    if (remote === undefined) return { kind: 'ask-destination', why: `committed ${what}: did every page arrive?`, sideEffectFree: true };
    if (remote === 'unreachable') return { kind: 'in-doubt', why: `committed ${what} and ${state.peer} cannot be asked whether every page arrived` };
    if (remote.pages === 'lost') return { kind: 'roll-back', why: `${state.peer} lost its copy before every page arrived`, cleanDestination: false };
    if (remote.pages === 'pending') return { kind: 'in-doubt', why: `committed ${what}, ${state.peer} still waits for pages` };
    return { kind: 'finish', why: `${state.peer} has every page` };
  }
  return { kind: 'finish', why: 'committed' };
}
