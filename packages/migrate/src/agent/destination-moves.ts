/**
 * The destination's side of a move's outcome: undo an uncommitted move, answer `status ID`, and remove a committed
 * post-copy copy whose pages can no longer arrive. Used by the live agent, by `ferry agent --cleanup/--status ID`
 * (a new agent, after the old one or its connection died) and by recovery at agent start.
 *
 * Contract: an undo first decides `aborted` (journal/decision.ts); if the move had committed, nothing is touched.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, printable, type RuntimeAdapter, type RuntimeName } from '@ferry/core';
import { decide, decidePages, readDecision, readPagesOutcome } from '../journal/decision';
import { Journal, migrationDir, readJournal, type JournalState } from '../journal/journal';
import { isAlive, killIfSame } from '../journal/proc-identity';
import type { RemoteOutcome } from '../protocol/agent-messages';
import { endFillRelays } from './fill-relay';
import { MIGRATION_ID, type Incoming } from './incoming';
import { settleOrphanedPages } from './orphaned-pages';

export interface DestinationDeps {
  runtime(name: RuntimeName): RuntimeAdapter;
  log(line: string): void;
  stateDir: string;
}

/** Undoes a move this agent holds in memory, unless it committed. */
export async function undoIncoming(m: Incoming, deps: DestinationDeps): Promise<void> {
  if (m.journal && decide(deps.stateDir, m.id, 'aborted') === 'committed') return;
  if (!m.journal && m.committed) return;
  m.journal?.append({ t: 'aborted' });
  m.lazy?.kill();
  m.pageServer?.kill();
  m.pageLink?.close();
  await m.pages?.close();
  // A restore still running when the connection went (Docker's start can take a while) is waited for; one
  // journaled as begun by an agent that died since may have finished without it: either way what it made goes.
  const restored = m.restored || (m.restoreSettled ? await m.restoreSettled : m.restoring === true) || m.networkPrepared === true;
  await removeWhatItMade(deps, m.runtime, restored ? m.name : undefined, m.loadedImage);
  await m.releaseFill?.(); // after the removal: the relay's copies of the userfaultfds keep faulting tasks from reading zeros
  m.journal?.close();
  rmSync(m.dir, { recursive: true, force: true });
}

async function removeWhatItMade(deps: Pick<DestinationDeps, 'runtime' | 'log'>, runtime: RuntimeName, name: string | undefined, image: string | undefined): Promise<void> {
  if (name) {
    deps.log(`rolling back: removing restored ${name}`);
    await deps.runtime(runtime).remove(name).catch((err: unknown) => deps.log(`cannot remove ${name}: ${(err as Error).message}`));
  }
  if (image) await deps.runtime(runtime).images?.remove(image).catch((err: unknown) => deps.log(`cannot remove image ${image}: ${(err as Error).message}`));
}

/**
 * Post-copy after the commit: the lazy-pages daemon ended before every page arrived, so the copy would run on pages
 * that read back as zeros. It is removed, and the pages' outcome `lost` tells the source to take the container back.
 */
export async function loseCopy(m: Pick<Incoming, 'id' | 'dir' | 'runtime' | 'name' | 'journal'>, deps: DestinationDeps, why: string): Promise<void> {
  m.journal?.append({ t: 'note', message: `pages lost: ${why}` });
  deps.log(`post-copy of ${m.name}: ${why}; removing the incomplete copy`);
  // Removed first, said after: the source resumes its copy on `lost`, so the word must never precede the removal.
  // A copy that cannot be removed leaves the pages undecided, and the source held (in doubt), never two copies.
  await deps.runtime(m.runtime).remove(m.name);
  decidePages(deps.stateDir, m.id, 'lost');
  m.journal?.append({ t: 'done', outcome: 'failed', error: { code: 'ERR_CRIU_RESTORE_FAILED', message: why } });
  m.journal?.close();
  rmSync(m.dir, { recursive: true, force: true });
}

/** A committed move that holds nothing any more: the images served their purpose, the bundle is the container's. */
export function finishKept(m: Pick<Incoming, 'id' | 'dir' | 'name' | 'journal'>, deps: Pick<DestinationDeps, 'log'>): void {
  for (const sub of ['images', 'work', 'levels', 'pre', 'relay']) rmSync(join(m.dir, sub), { recursive: true, force: true });
  m.journal?.append({ t: 'done', outcome: 'kept' });
  m.journal?.close();
  m.journal = undefined;
  deps.log(`migration ${m.id}: ${m.name} committed`);
}

/**
 * Undoes migration `id` on this host after its agent died (the source's rollback, over a new connection): removes
 * what it restored unless the migration committed, then its files. Idempotent.
 */
export async function cleanupMigration(id: string, deps: DestinationDeps): Promise<{ cleaned: boolean; committed: boolean }> {
  checkId(id);
  const dir = migrationDir(deps.stateDir, id);
  let state: JournalState | undefined;
  try {
    state = readJournal(dir);
  } catch {
    /* no journal: nothing was prepared here, or it is gone */
  }
  // The journal's `committed` counts too: a decision file pruned long after must never turn a kept move into an abort.
  if (state?.committed || decide(deps.stateDir, id, 'aborted') === 'committed') {
    if (state && !state.done) await releaseKept(state, deps);
    return { cleaned: false, committed: true };
  }
  if (!state) {
    rmSync(dir, { recursive: true, force: true });
    return { cleaned: false, committed: false };
  }
  await undoFromJournal(state, dir, deps);
  return { cleaned: true, committed: false };
}

async function undoFromJournal(state: JournalState, dir: string, deps: DestinationDeps): Promise<void> {
  for (const kind of ['lazy-daemon', 'page-server', 'page-link'] as const) for (const p of state.holds.get(kind)?.pids ?? []) killIfSame(p);
  const restored = state.holds.get('restored')?.name;
  await removeWhatItMade(deps, state.runtime, restored, state.holds.get('image-loaded')?.image);
  // A lazy restore's relay last: its copies of the userfaultfds block the copy's faults until the copy is gone.
  await endFillRelays(state.holds.get('relay')?.pids ?? []);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The destination's word on `id`, for the source's recovery (`ferry agent --status ID`, which first settles a
 * post-copy whose agent died: orphaned-pages.ts). Changes nothing. A committed post-copy whose pages have no outcome
 * yet is `pending`: the agent that watches its lazy-pages daemon writes the outcome before anything else.
 */
export function migrationStatus(id: string, stateDir: string): RemoteOutcome {
  checkId(id);
  const decision = readDecision(stateDir, id);
  const pages = readPagesOutcome(stateDir, id);
  if (pages) return { decision, pages };
  if (decision === 'committed' && pagesPending(stateDir, id)) return { decision, pages: 'pending' };
  return { decision };
}

function pagesPending(stateDir: string, id: string): boolean {
  try {
    return readJournal(migrationDir(stateDir, id)).holds.has('lazy-daemon');
  } catch {
    return false;
  }
}

/**
 * At agent start: moves whose agent died. Uncommitted ones are undone; committed ones are closed as kept, except a
 * post-copy whose pages have no outcome (its agent died while the daemon ran): orphaned-pages.ts settles that one.
 */
export async function recoverIncoming(deps: DestinationDeps, ids: readonly string[]): Promise<string[]> {
  const recovered: string[] = [];
  for (const id of ids) {
    const dir = migrationDir(deps.stateDir, id);
    let state: JournalState;
    try {
      state = readJournal(dir);
    } catch {
      continue;
    }
    if (state.role !== 'destination' || state.done || state.holds.get('owner')?.pids?.some(isAlive)) continue;
    if (!state.committed && decide(deps.stateDir, id, 'aborted') !== 'committed') {
      await undoFromJournal(state, dir, deps);
      recovered.push(`${id}: ${state.container} rolled back`);
      continue;
    }
    if (state.holds.has('lazy-daemon') && !readPagesOutcome(deps.stateDir, id)) {
      const outcome = await settleOrphanedPages(id, deps);
      if (!outcome) {
        recovered.push(`${id}: ${state.container} is a post-copy whose agent died; its page link (waiting for the source to reconnect) or its page relay (filling the copy) still runs`);
        continue;
      }
      recovered.push(`${id}: ${state.container} is a post-copy whose agent died before it recorded the pages: ${outcome === 'complete' ? 'every page had arrived, kept' : 'its copy was removed, the source takes it back'}`);
      continue;
    }
    await releaseKept(state, deps);
    const journal = Journal.open(dir);
    journal.append({ t: 'done', outcome: 'kept' });
    journal.close();
    recovered.push(`${id}: ${state.container} committed, kept`);
  }
  return recovered;
}

/**
 * A committed copy whose agent died before it let the copy onto the network (or while it did): releases it now, so
 * no packet hold or unplugged link outlives the move. Idempotent; a failure is noted, the copy is still the kept one.
 */
async function releaseKept(state: JournalState, deps: Pick<DestinationDeps, 'runtime' | 'log'>): Promise<void> {
  const name = state.holds.get('restored')?.name;
  if (!name) return;
  try {
    await deps.runtime(state.runtime).releaseNetwork?.(name);
  } catch (err) {
    deps.log(`${state.container} committed, but cannot plug it into its network: ${(err as Error).message}`);
  }
}

function checkId(id: string): void {
  if (!MIGRATION_ID.test(id)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `bad migration id ${printable(id, 80)}`, { hint: 'Migration ids are 8-64 letters, digits and dashes, as the source printed them.' });
}
