/**
 * Finished moves leave their journal (and report) behind for `ferry recover` and for reading; after a week they go.
 * Only source journals: a committed destination directory holds the container's bundle. Destination decisions are
 * kept for a month (a source in doubt may ask that late).
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { migrationDir, readJournal } from './journal';

export const FINISHED_MOVE_KEEP_MS = 7 * 24 * 3600_000;
export const DECISION_KEEP_MS = 30 * 24 * 3600_000;

export function pruneFinishedMoves(stateDir: string, now = Date.now()): string[] {
  const removed: string[] = [];
  for (const id of list(join(stateDir, 'migrations'))) {
    try {
      const state = readJournal(migrationDir(stateDir, id));
      const doneAt = statSync(join(migrationDir(stateDir, id), 'journal')).mtimeMs;
      if (state.role === 'source' && state.done && now - doneAt > FINISHED_MOVE_KEEP_MS) {
        rmSync(migrationDir(stateDir, id), { recursive: true, force: true });
        removed.push(id);
      }
    } catch {
      /* not a journal */
    }
  }
  return removed;
}

/** Decisions of moves whose directory is gone (aborted, or left again) and older than a month. */
export function pruneDecisions(stateDir: string, now = Date.now()): void {
  const dir = join(stateDir, 'decisions');
  for (const file of list(dir)) {
    const id = file.split('.')[0]!;
    if (existsSync(migrationDir(stateDir, id))) continue;
    try {
      if (now - statSync(join(dir, file)).mtimeMs > DECISION_KEEP_MS) rmSync(join(dir, file), { force: true });
    } catch {
      /* gone meanwhile */
    }
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
