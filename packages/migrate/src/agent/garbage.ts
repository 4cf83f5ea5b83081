/**
 * What ferry leaves in its state directory and when it goes (`ferry gc`, and the clean-up when a container leaves):
 *
 * - `migrations/ID` on a destination holds a container's bundle once the move is committed. It goes when that
 *   container has left the host (migrated away: removed at that commit, see removeArrivedMigration; or removed by
 *   hand: gc). A committed directory whose container still runs from it is kept, whatever its age.
 * - `migrations/ID` never committed: an interrupted move. gc undoes it (cleanupMigration) once older than the
 *   retention time, so a move in progress is never touched.
 * - `outgoing/ID` (a source's images of a move) and `failover-*` (CRIU's work directory of a failover): removed
 *   once older than the retention time; a failed one is kept that long for its logs.
 */
import { lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { isFerryError, type RuntimeAdapter, type RuntimeName } from '@ferry/core';
import { cleanupMigration } from './agent-server';

export const DEFAULT_RETENTION_MS = 24 * 3_600_000;

export interface GarbageDeps {
  stateDir: string;
  runtime(name: RuntimeName): RuntimeAdapter;
  log(line: string): void;
  now?: () => number;
}

export interface GarbageItem {
  path: string;
  reason: string;
  removed: boolean;
}

export async function collectGarbage(deps: GarbageDeps, options: { olderThanMs?: number; dryRun?: boolean } = {}): Promise<GarbageItem[]> {
  const retention = options.olderThanMs ?? DEFAULT_RETENTION_MS;
  const now = (deps.now ?? Date.now)();
  const old = (path: string) => now - lstatSync(path).mtimeMs > retention;
  const items: GarbageItem[] = [];
  const remove = async (path: string, reason: string, how: () => Promise<void> | void = () => rmSync(path, { recursive: true, force: true })) => {
    if (!options.dryRun) await how();
    items.push({ path, reason, removed: !options.dryRun });
  };

  for (const name of list(deps.stateDir)) {
    const path = join(deps.stateDir, name);
    if (name.startsWith('failover-') && old(path)) await remove(path, 'a failover work directory past the retention time');
  }
  for (const name of list(join(deps.stateDir, 'outgoing'))) {
    const path = join(deps.stateDir, 'outgoing', name);
    if (old(path)) await remove(path, 'images of a move that ended without cleaning up');
  }
  for (const id of list(join(deps.stateDir, 'migrations'))) {
    const path = join(deps.stateDir, 'migrations', id);
    const record = readRecord(path);
    if (record?.committed) {
      if (await stillHere(deps, record, path)) continue;
      await remove(path, `${record.runtime}:${record.name} is no longer on this host`);
    } else if (old(path)) {
      await remove(path, record ? `an interrupted move of ${record.runtime}:${record.name}` : 'a migration directory without a record', async () => {
        await cleanupMigration(id, deps).catch(() => rmSync(path, { recursive: true, force: true }));
      });
    }
  }
  return items;
}

/**
 * The container that arrived in STATE/migrations/ID left this host (it was migrated away and removed): its
 * directory goes too. Returns the directory removed, if `bundle` was one of those.
 */
export function removeArrivedMigration(stateDir: string, bundle: string | undefined): string | undefined {
  if (!bundle) return undefined;
  const rel = relative(join(stateDir, 'migrations'), bundle).split(sep);
  if (rel.length !== 2 || rel[1] !== 'bundle' || !/^[A-Za-z0-9-]{8,64}$/.test(rel[0]!)) return undefined;
  const dir = join(stateDir, 'migrations', rel[0]!);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

interface Record {
  runtime: RuntimeName;
  name: string;
  committed: boolean;
}

function readRecord(dir: string): Record | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dir, 'migration.json'), 'utf8')) as Partial<Record>;
    return typeof r.name === 'string' && typeof r.runtime === 'string' ? { runtime: r.runtime, name: r.name, committed: r.committed === true } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the container still runs from `dir` here (any error other than "not found" counts as yes: keep). */
async function stillHere(deps: GarbageDeps, record: Record, dir: string): Promise<boolean> {
  try {
    const info = await deps.runtime(record.runtime).inspect(record.name);
    return info.bundle === undefined || info.bundle === dir || info.bundle.startsWith(`${dir}${sep}`);
  } catch (err) {
    return !isFerryError(err, 'ERR_RUNTIME_NOT_FOUND');
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
