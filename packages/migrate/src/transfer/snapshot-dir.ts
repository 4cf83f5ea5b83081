/**
 * snapshotDir: what a directory holds right now, without following symlinks. Taken before a copy and again after
 * it, two snapshots tell what to send again (diffSnapshots).
 *
 * Contract: reads only; the directory may change while it is walked (a running container's rootfs does), in which
 * case the snapshot mixes moments, which diffSnapshots accounts for. Throws ERR_PRECHECK_BAD_INPUT when `dir` is not
 * a readable directory.
 */
import type { BigIntStats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { sourceError } from './transfer-errors';
import type { DirSnapshot, SnapshotEntry, SnapshotEntryType } from './transfer-types';
import { walkTree } from './walk-tree';

export async function snapshotDir(dir: string): Promise<DirSnapshot> {
  const startedAtMs = Date.now();
  let root: string;
  try {
    root = await realpath(dir);
  } catch (err) {
    throw sourceError(dir, err);
  }
  const snapshot: DirSnapshot = { root, startedAtMs, entries: [], skipped: [] };
  for await (const item of walkTree(root)) {
    if (item.kind === 'skipped') snapshot.skipped.push(item.skipped);
    else snapshot.entries.push(toSnapshotEntry(item.path, item.type, item.stat, item.linkTarget));
  }
  return snapshot;
}

export function toSnapshotEntry(path: string, type: SnapshotEntryType, stat: BigIntStats, linkTarget?: string): SnapshotEntry {
  const entry: SnapshotEntry = {
    path,
    type,
    mode: Number(stat.mode & 0o7777n),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    size: type === 'dir' ? 0 : Number(stat.size),
    mtimeMs: Number(stat.mtimeNs) / 1e6,
    ctimeMs: Number(stat.ctimeNs) / 1e6,
  };
  if (linkTarget !== undefined) entry.linkTarget = linkTarget;
  return entry;
}
