/**
 * Moves one running container to another host: the library entry of every move (`ferry migrate` runs it in a
 * guardian process, clone/drain/replicate/bench call it directly). See execute-migration.ts for the phases and
 * strategies/ for what each strategy does in them.
 *
 * Contract: when this throws, the source container runs again (thawed, on its network) and the destination holds
 * nothing of it, with two exceptions the error names: ERR_MOVE_IN_DOUBT (the commit's answer was lost and the
 * destination cannot be asked: the source is left frozen, the journal open, `ferry recover ID` resolves it) and
 * ERR_ROLLBACK_FAILED (the source could not be thawed; `ferry recover ID` retries). A second move of the same
 * container while this one runs is refused with ERR_PRECHECK_MOVE_IN_PROGRESS.
 */
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { assertNoSharedStorageLocks, isFerryError, unnamedListenerWarnings } from '@ferry/core';
import { Journal, migrationDir } from '../journal/journal';
import { takeMoveLock } from '../journal/move-lock';
import { selfId } from '../journal/proc-identity';
import { executeMigration } from './execute-migration';
import type { MigrateDeps, MigrateRequest, MigrationReport } from './migrate-deps';
import { MoveContext } from './move-context';
import { checkContainer, type ContainerFacts } from './plan-migration';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * What this host alone can refuse: no such container, a bad name, one that does not run, storage that would not be
 * copied, a clone conflict, a configuration CRIU cannot dump. The CLI runs it before it starts a guardian (bad input
 * then fails at once and leaves nothing behind); migrateContainer runs it again.
 */
export async function precheckMove(request: Pick<MigrateRequest, 'container' | 'strategy' | 'sharedStorage' | 'fileLocks' | 'clone'>, deps: Pick<MigrateDeps, 'findContainer'>) {
  const { adapter, container } = await deps.findContainer(request.container);
  const facts: ContainerFacts = {
    name: container.ref.id,
    state: container.state,
    pid: container.pid,
    bundle: container.bundle,
    rootfs: container.rootfs,
    bindMounts: container.bindMounts?.map((path) => ({ path, directory: isDirectory(path) })),
    ...(request.clone && container.state === 'running' ? { ties: await adapter.networkTies(container.ref.id) } : {}),
  };
  checkContainer(request, adapter, facts);
  await adapter.preflight(container);
  // Before anything is frozen: a lock the frozen source keeps would hang the destination's restore of shared files.
  if (request.sharedStorage && request.fileLocks) assertNoSharedStorageLocks(container);
  return { adapter, container, facts };
}

export async function migrateContainer(request: MigrateRequest, deps: MigrateDeps): Promise<MigrationReport> {
  const id = request.migrationId ?? randomUUID();
  const { adapter, container, facts } = await precheckMove(request, deps);
  const journal = Journal.create(migrationDir(deps.stateDir, id), {
    t: 'begin',
    role: 'source',
    id,
    runtime: adapter.name,
    container: container.ref.id,
    peer: request.destination.name,
    destination: request.destination,
    target: request.clone?.name,
    clone: request.clone !== undefined,
  });
  let releaseLock: (() => void) | undefined;
  try {
    journal.hold({ kind: 'owner', pids: [selfId()] });
    releaseLock = takeMoveLock(deps.stateDir, adapter.name, container.ref.id, id);
    const ctx = new MoveContext(id, request, deps, adapter, container, journal);
    // Nothing ferry can carry: the report says which socket the restored container will not answer on by path.
    ctx.warnings.push(...unnamedListenerWarnings(container));
    return await executeMigration(ctx, facts);
  } catch (err) {
    if (!releaseLock) journal.append({ t: 'done', outcome: 'failed', error: { code: isFerryError(err) ? err.code : 'ERR_BUG', message: (err as Error).message } });
    throw err;
  } finally {
    // An open journal (a move in doubt, a source that could not be thawed) keeps the lock: recovery owns the move.
    if (journal.state().done) releaseLock?.();
    journal.close();
  }
}
