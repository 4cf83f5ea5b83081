/**
 * What ferry leaves in its state directory and when it goes (`ferry gc`, and the clean-up when a container leaves):
 *
 * - `migrations/ID` on a destination holds a container's bundle (and copies of a rootfs or bind-mounted directories
 *   that lay outside it) once the move is committed. It goes when that container has left the host (migrated away:
 *   removed at that commit, see removeArrivedMigration; or removed by hand: gc). A committed directory whose
 *   container still runs from it is kept, whatever its age.
 * - `migrations/ID` never committed: an interrupted move. gc undoes it (cleanupMigration) once older than the
 *   retention time, so a move in progress is never touched.
 * - `migrations/ID` of a move that left this host (its source journal): removed once it is over and older than the
 *   retention time; an open one is `ferry recover`'s.
 * - `outgoing/ID` (a source's images of a move) and `failover-*` (CRIU's work directory of a failover): removed
 *   once older than the retention time; a failed one is kept that long for its logs.
 */
import { lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { isFerryError, type RuntimeAdapter, type RuntimeName } from '@ferry/core';
import { readDecision } from '../journal/decision';
import { readJournal } from '../journal/journal';
import { cleanupMigration } from './destination-moves';

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
    const record = readRecord(deps.stateDir, path);
    if (record?.role === 'source') {
      if (record.done && old(path)) await remove(path, `the journal of a finished move of ${record.runtime}:${record.name}`);
      continue;
    }
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
 * directory goes too. `container` names the paths it used (its bundle, rootfs, bind mount sources): any of them
 * inside a migrations/ID directory names that move. Returns the directory removed, if any.
 */
export function removeArrivedMigration(stateDir: string, container: { bundle?: string; rootfs?: string; bindMounts?: string[] } | string | undefined): string | undefined {
  const c = typeof container === 'string' || container === undefined ? { bundle: container } : container;
  for (const path of [c.bundle, c.rootfs, ...(c.bindMounts ?? [])]) {
    const dir = arrivedIn(stateDir, path);
    if (dir) {
      rmSync(dir, { recursive: true, force: true });
      return dir;
    }
  }
  return undefined;
}

/** STATE/migrations/ID when `path` is that move's bundle or a copy in it (bundle, rootfs, mount/N). */
function arrivedIn(stateDir: string, path: string | undefined): string | undefined {
  if (!path) return undefined;
  const rel = relative(join(stateDir, 'migrations'), path).split(sep);
  if (rel.length < 2 || !/^(bundle|rootfs|mount)$/.test(rel[1]!) || !/^[A-Za-z0-9-]{8,64}$/.test(rel[0]!)) return undefined;
  if (rel[1] === 'bundle' && rel.length !== 2) return undefined;
  return join(stateDir, 'migrations', rel[0]!);
}

interface Record {
  role: 'source' | 'destination';
  runtime: RuntimeName;
  name: string;
  committed: boolean;
  done: boolean;
}

/** A move's journal (migration.json of an older agent as a fallback). */
function readRecord(stateDir: string, dir: string): Record | undefined {
  const id = dir.split(sep).at(-1)!;
  try {
    const j = readJournal(dir);
    const committed = j.committed || (j.role === 'destination' && readDecision(stateDir, id) === 'committed');
    return { role: j.role, runtime: j.runtime, name: j.container, committed, done: j.done !== undefined };
  } catch {
    /* no journal */
  }
  try {
    const r = JSON.parse(readFileSync(join(dir, 'migration.json'), 'utf8')) as Partial<Record>;
    return typeof r.name === 'string' && typeof r.runtime === 'string' ? { role: 'destination', runtime: r.runtime, name: r.name, committed: r.committed === true, done: false } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the container still runs from `dir` here (any error other than "not found" counts as yes: keep). */
async function stillHere(deps: GarbageDeps, record: Record, dir: string): Promise<boolean> {
  try {
    const info = await deps.runtime(record.runtime).inspect(record.name);
    if (info.bundle === undefined) return true;
    return [info.bundle, info.rootfs, ...(info.bindMounts ?? [])].some((p) => p !== undefined && (p === dir || p.startsWith(`${dir}${sep}`)));
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
