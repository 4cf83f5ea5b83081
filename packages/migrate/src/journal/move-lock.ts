/**
 * One move per container at a time: STATE/locks/RUNTIME:NAME holds the id of the move that owns the container,
 * created with O_EXCL. A lock whose move is over (its journal says done, or there is no journal) is stale and taken
 * over; a lock of a move in flight or interrupted refuses the second move.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, type RuntimeName } from '@ferry/core';
import { migrationDir, readJournal } from './journal';
import { isAlive } from './proc-identity';

export function lockPath(stateDir: string, runtime: RuntimeName, name: string): string {
  return join(stateDir, 'locks', `${runtime}:${name}`);
}

/** The move holding `runtime:name`, if any. */
export function lockHolder(stateDir: string, runtime: RuntimeName, name: string): string | undefined {
  try {
    return readFileSync(lockPath(stateDir, runtime, name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Takes the container's lock for move `id`; returns its release. Throws ERR_PRECHECK_MOVE_IN_PROGRESS. */
export function takeMoveLock(stateDir: string, runtime: RuntimeName, name: string, id: string): () => void {
  const path = lockPath(stateDir, runtime, name);
  mkdirSync(join(stateDir, 'locks'), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, id);
      closeSync(fd);
      return () => {
        if (lockHolder(stateDir, runtime, name) === id) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = lockHolder(stateDir, runtime, name);
    if (holder === undefined || isStale(stateDir, holder)) {
      rmSync(path, { force: true });
      continue;
    }
    const owner = ownerAlive(stateDir, holder);
    throw new FerryError(
      'ERR_PRECHECK_MOVE_IN_PROGRESS',
      owner
        ? `${runtime}:${name} is being moved already (migration ${holder})`
        : `${runtime}:${name} has an interrupted move (migration ${holder}) that was not recovered yet`,
      { hint: owner ? 'Wait for that move to end; `ferry recover` lists it.' : `Run \`ferry recover ${holder}\` first.` },
    );
  }
  throw new FerryError('ERR_PRECHECK_MOVE_IN_PROGRESS', `cannot take the lock ${path}`, { hint: 'Run `ferry recover`.' });
}

function isStale(stateDir: string, id: string): boolean {
  try {
    return readJournal(migrationDir(stateDir, id)).done !== undefined;
  } catch {
    return true; // no journal: the move never began
  }
}

function ownerAlive(stateDir: string, id: string): boolean {
  try {
    const owner = readJournal(migrationDir(stateDir, id)).holds.get('owner');
    return owner?.pids?.some(isAlive) === true;
  } catch {
    return false;
  }
}
