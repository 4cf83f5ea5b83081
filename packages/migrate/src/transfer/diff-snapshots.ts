/**
 * diffSnapshots: what to send again after a first copy taken while the source kept running.
 *
 * Take `before` with snapshotDir, copy, take `after` (with the container frozen for the last round), then send
 * `changed` (packDir's `only`) and `deleted` (packDir's `deleted`). Every write after `before` saw an entry changes
 * its mtime or ctime, except one that lands in the same timestamp tick as the write `before` saw: file times come
 * from a coarse kernel clock (one jiffy, up to 10 ms). Like git's "racily clean" index entries, an entry whose times
 * are within RACY_WINDOW_MS of the moment `before` was started is therefore sent again even when it looks unchanged.
 */
import { parentPath, ROOT_PATH } from './relative-path';
import type { DirSnapshot, SnapshotEntry } from './transfer-types';

/** Larger than the coarsest kernel timestamp tick (HZ=100: 10 ms) with room for clock skew between clocks. */
export const RACY_WINDOW_MS = 100;

export interface SnapshotDiff {
  /** Entries to send again: new, or different in type, size, mode, owner, times or symlink target. Parents first. */
  changed: string[];
  /** Entries that are gone; below a deleted directory only the directory itself is listed. */
  deleted: string[];
}

export function diffSnapshots(before: DirSnapshot, after: DirSnapshot): SnapshotDiff {
  const previous = new Map(before.entries.map((e) => [e.path, e]));
  const racySinceMs = before.startedAtMs - RACY_WINDOW_MS;
  const changed: string[] = [];
  for (const entry of after.entries) {
    const old = previous.get(entry.path);
    if (old === undefined || entryChanged(old, entry) || isRacy(old, racySinceMs)) changed.push(entry.path);
  }
  const present = new Set(after.entries.map((e) => e.path));
  const deleted: string[] = [];
  const deletedSet = new Set<string>();
  for (const entry of before.entries) {
    if (present.has(entry.path)) continue;
    deletedSet.add(entry.path);
    // before.entries is in pre-order: a deleted directory comes before its contents.
    if (entry.path !== ROOT_PATH && !deletedSet.has(parentPath(entry.path))) deleted.push(entry.path);
  }
  return { changed, deleted };
}

/** Anything the receiver would need to write again. */
export function entryChanged(a: SnapshotEntry, b: SnapshotEntry): boolean {
  return (
    a.type !== b.type ||
    a.size !== b.size ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.mtimeMs !== b.mtimeMs ||
    a.ctimeMs !== b.ctimeMs ||
    a.linkTarget !== b.linkTarget
  );
}

function isRacy(entry: SnapshotEntry, sinceMs: number): boolean {
  return entry.mtimeMs >= sinceMs || entry.ctimeMs >= sinceMs;
}
