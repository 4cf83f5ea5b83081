/**
 * Recovery of moves whose owner (guardian, or a library caller) died: `ferry recover`, the check at the start of
 * every migrate/clone/drain, and the watchdog. Reads the source journal, decides (plan-recovery.ts), and acts:
 *
 * - roll back: end the dump processes that hold the tasks (by pid, after checking their start time), remove CRIU's
 *   network-lock rules from the container's netns, unfence, thaw, and verify that the tasks run (freezer thawed
 *   and no task in state t/T), then have the destination cleaned;
 * - finish: end a held lazy dump cleanly (CRIU then ends the source tree), remove the source container.
 *
 * Contract: a move ends `done` in its journal and its lock is released, or stays open (in doubt, or a rollback that
 * failed) with the reason returned; nothing is guessed.
 */
import { readdirSync, rmSync } from 'node:fs';
import { FerryError, isFerryError, tasksRunning, type ContainerInfo, type RuntimeAdapter } from '@ferry/core';
import { endLazyDump } from '../precopy/end-lazy-dump';
import { dialLazyDumpOf } from '../pages/dump-netns';
import { Journal, migrationDir, readJournal, removeMoveFiles, type JournalState } from '../journal/journal';
import { lockHolder, lockPath } from '../journal/move-lock';
import { isAlive, killIfSame, processesMarked, selfId, type ProcessId } from '../journal/proc-identity';
import type { RemoteOutcome, StatusOptions } from '../protocol/agent-messages';
import type { Destination } from '../hosts/resolve-host';
import { CLEAN_FIRST_MS, settleWithin } from '../engine/clean-first';
import { planRecovery, type RecoveryAction } from './plan-recovery';
import { endDump, waitGone } from './end-dump';

/** What recovery needs from its host (a subset of MigrateDeps). */
export interface RecoveryDeps {
  findContainer(name: string): Promise<{ adapter: RuntimeAdapter; container: ContainerInfo }>;
  cleanupRemote(destination: Destination, migrationId: string): Promise<{ kept: boolean }>;
  remoteStatus(destination: Destination, migrationId: string, options?: StatusOptions): Promise<RemoteOutcome>;
  stateDir: string;
}

export interface RecoveryResult {
  id: string;
  container: string;
  outcome: 'rolled-back' | 'finished' | 'in-doubt' | 'left' | 'failed';
  detail: string;
}

/** Source journals on this host that are not over. */
export function openMoves(stateDir: string): { id: string; state: JournalState; ownerAlive: boolean }[] {
  let ids: string[];
  try {
    ids = readdirSync(`${stateDir}/migrations`);
  } catch {
    return [];
  }
  const out: { id: string; state: JournalState; ownerAlive: boolean }[] = [];
  for (const id of ids) {
    try {
      const state = readJournal(migrationDir(stateDir, id));
      if (state.role !== 'source' || state.done) continue;
      out.push({ id, state, ownerAlive: state.holds.get('owner')?.pids?.some(isAlive) === true });
    } catch {
      /* not a journal (an older layout, or a torn first line) */
    }
  }
  return out;
}

/** Recovers every interrupted move on this host (or only `ids`); moves in flight are left to their guardian. */
export async function recoverMoves(deps: RecoveryDeps, ids?: readonly string[]): Promise<RecoveryResult[]> {
  const results: RecoveryResult[] = [];
  for (const move of openMoves(deps.stateDir)) {
    if (ids && !ids.includes(move.id)) continue;
    if (move.ownerAlive) {
      results.push({ id: move.id, container: move.state.container, outcome: 'left', detail: `in flight (phase ${move.state.phase ?? 'none'})` });
      continue;
    }
    results.push(await recoverMove(move.id, deps));
  }
  return results;
}

export async function recoverMove(id: string, deps: RecoveryDeps): Promise<RecoveryResult> {
  const dir = migrationDir(deps.stateDir, id);
  let state = readJournal(dir);
  const result = (outcome: RecoveryResult['outcome'], detail: string): RecoveryResult => ({ id, container: state.container, outcome, detail });
  const owner = state.holds.get('owner');
  let action = planRecovery(state, { ownerAlive: owner?.pids?.some((p) => isAlive(p) && p.pid !== process.pid) === true });
  if (action.kind === 'leave') return result('left', action.why);
  const journal = Journal.open(dir);
  try {
    journal.hold({ kind: 'owner', pids: [selfId()] });
    journal.append({ t: 'note', message: `recovery: ${action.why}` });
    if (action.kind === 'ask-destination') {
      const remote = await askDestination(state, id, deps, action.sideEffectFree);
      action = planRecovery(state, { ownerAlive: false, remote });
    }
    state = journal.state();
    return await act(action, state, journal, deps, result);
  } finally {
    journal.close();
  }
}

async function act(
  action: RecoveryAction,
  state: JournalState,
  journal: Journal,
  deps: RecoveryDeps,
  result: (outcome: RecoveryResult['outcome'], detail: string) => RecoveryResult,
): Promise<RecoveryResult> {
  switch (action.kind) {
    case 'roll-back': {
      // Started first: from the source's fence on, a runc copy's links may be up behind its packet hold on the
      // destination, and the source's must not come back while they are (the same addresses and MAC). Given
      // CLEAN_FIRST_MS, so that a destination out of reach does not keep the source frozen.
      const cleaning =
        action.cleanDestination && state.destination
          ? deps.cleanupRemote(state.destination, state.id).then(
              () => undefined,
              (err: unknown) => journal.append({ t: 'note', message: `destination not cleaned: ${(err as Error).message}` }),
            )
          : undefined;
      if (cleaning && state.holds.has('fence')) await settleWithin(cleaning, CLEAN_FIRST_MS);
      try {
        await rollBackSource(state, deps);
      } catch (err) {
        journal.append({ t: 'note', message: `recovery could not roll back: ${(err as Error).message}` });
        await cleaning;
        return result('failed', `${action.why}; rolling back failed: ${(err as Error).message}`);
      }
      await cleaning;
      close(journal, state, deps, 'rolled-back');
      return result('rolled-back', `${action.why}: the source runs again`);
    }
    case 'finish':
      await finishSource(state, deps, journal);
      close(journal, state, deps, state.clone ? 'cloned' : 'moved');
      return result('finished', `${action.why}: the move is complete`);
    case 'in-doubt':
      return result('in-doubt', `${action.why}; the source is left as it is (run \`ferry recover ${state.id}\` again)`);
    default:
      return result('left', action.why);
  }
}

function close(journal: Journal, state: JournalState, deps: RecoveryDeps, outcome: 'rolled-back' | 'moved' | 'cloned'): void {
  removeMoveFiles(journal.dir);
  journal.append({ t: 'done', outcome });
  if (lockHolder(deps.stateDir, state.runtime, state.container) === state.id) rmSync(lockPath(deps.stateDir, state.runtime, state.container), { force: true });
}

async function askDestination(state: JournalState, id: string, deps: RecoveryDeps, sideEffectFree: boolean): Promise<RemoteOutcome | 'unreachable'> {
  if (!state.destination) return 'unreachable';
  try {
    // Asked about a committed post-copy's pages: the owner that held CRIU's end of the page link is dead, which reset
    // that end, so the destination's keeper need not wait for a reconnection that cannot come.
    if (sideEffectFree) return await deps.remoteStatus(state.destination, id, { abandonPages: true });
    return { decision: (await deps.cleanupRemote(state.destination, id)).kept ? 'committed' : 'aborted' };
  } catch {
    return 'unreachable';
  }
}

/** The dump's processes: those journaled, and any found by the marker (a dump that had not reported ready yet). */
function dumpProcesses(state: JournalState): ProcessId[] {
  const dump = state.holds.get('dump');
  if (!dump) return [];
  const found = new Map<number, ProcessId>();
  for (const p of [...(dump.pids ?? []), ...(dump.marker ? processesMarked(dump.marker) : [])]) found.set(p.pid, p);
  return [...found.values()];
}

async function findSource(state: JournalState, deps: RecoveryDeps): Promise<{ adapter: RuntimeAdapter; container: ContainerInfo } | undefined> {
  try {
    return await deps.findContainer(`${state.runtime}:${state.container}`);
  } catch (err) {
    if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return undefined;
    throw err;
  }
}

/** Brings the source back: see the file comment. Throws ERR_ROLLBACK_FAILED when its tasks do not run after. */
export async function rollBackSource(state: JournalState, deps: RecoveryDeps): Promise<void> {
  const dump = state.holds.get('dump');
  const found = await findSource(state, deps);
  if (dump) await endDump(dump, found?.container ?? {});
  if (!found) {
    throw new FerryError('ERR_ROLLBACK_FAILED', `${state.runtime} container ${state.container} is gone from this host`, {
      hint: `It may have exited on its own; check ${state.peer} and \`ferry ps\`.`,
    });
  }
  const { adapter, container } = found;
  const fence = state.holds.get('fence')?.fence;
  if (fence) await adapter.unfenceNetwork(fence);
  if (state.holds.has('frozen') || container.state === 'paused') await adapter.resume(container.ref.id);
  await verifyRunning(adapter, container.ref.id);
}

/** Freezer thawed and no task stopped; a task left in a group stop gets SIGCONT once. */
export async function verifyRunning(adapter: RuntimeAdapter, name: string): Promise<void> {
  const container = await adapter.inspect(name);
  if (!container.freezerPath) {
    if (container.state === 'running') return;
    throw new FerryError('ERR_ROLLBACK_FAILED', `${name} is ${container.state} after the rollback`, { hint: `Inspect it with \`ferry ps\`.` });
  }
  let verdict = tasksRunning(container.freezerPath);
  for (const tid of verdict.stopped) {
    try {
      process.kill(tid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  if (verdict.stopped.length > 0) {
    await new Promise((r) => setTimeout(r, 100));
    verdict = tasksRunning(container.freezerPath);
  }
  if (!verdict.running) {
    throw new FerryError('ERR_ROLLBACK_FAILED', `the tasks of ${name} do not run after the rollback (${verdict.detail})`, { hint: `Inspect them with \`ps -o pid,stat -p ...\` and the freezer at ${container.freezerPath}.` });
  }
}

/** After the commit: a held lazy dump is ended cleanly (CRIU then ends the source tree); the source is removed. */
async function finishSource(state: JournalState, deps: RecoveryDeps, journal: Journal): Promise<void> {
  const dump = dumpProcesses(state);
  const port = state.holds.get('dump')?.port;
  if (dump.some(isAlive) && port !== undefined && state.strategy === 'hash-pre-copy') {
    await endLazyDump(() => dialLazyDumpOf(dump.filter(isAlive).map((p) => p.pid), port)).catch((err: unknown) => journal.append({ t: 'note', message: `lazy dump not ended cleanly: ${(err as Error).message}` }));
    await waitGone(dump);
  }
  for (const p of dump) killIfSame(p);
  if (state.clone) return;
  const found = await findSource(state, deps);
  if (found) await found.adapter.remove(found.container.ref.id);
}
