/**
 * Disk used by snapshots: allocated blocks (st_blocks * 512), not apparent sizes, each inode counted once. Within a
 * snapshot a hard-linked file counts once; in the total, a file shared by several snapshots counts once too.
 * Symlinks (CRIU's `parent` link) are not followed.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskEntry {
  /** Device and inode: the identity of the file. */
  dev: number;
  ino: number;
  /** Allocated bytes (st_blocks * 512). */
  bytes: number;
}

export interface DiskUsage {
  /** Per owner (snapshot id), bytes allocated by its files. */
  byOwner: Record<string, number>;
  /** All owners together, shared inodes once. */
  totalBytes: number;
}

/** Bytes allocated per owner and in total, each shared inode counted once (pure). */
export function summariseDiskUsage(entriesByOwner: Readonly<Record<string, readonly DiskEntry[]>>): DiskUsage {
  const byOwner: Record<string, number> = {};
  const seenTotal = new Set<string>();
  let totalBytes = 0;
  for (const [owner, entries] of Object.entries(entriesByOwner)) {
    const seen = new Set<string>();
    let bytes = 0;
    for (const e of entries) {
      const key = `${e.dev}:${e.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        bytes += e.bytes;
      }
      if (!seenTotal.has(key)) {
        seenTotal.add(key);
        totalBytes += e.bytes;
      }
    }
    byOwner[owner] = bytes;
  }
  return { byOwner, totalBytes };
}

/** The files and directories under `dir` (itself included) as DiskEntries; a missing directory has none. */
export async function diskEntries(dir: string): Promise<DiskEntry[]> {
  const out: DiskEntry[] = [];
  const visit = async (path: string): Promise<void> => {
    let st;
    try {
      st = await lstat(path);
    } catch {
      return; // removed meanwhile
    }
    out.push({ dev: st.dev, ino: st.ino, bytes: st.blocks * 512 });
    if (!st.isDirectory()) return;
    for (const name of await readdir(path).catch(() => [] as string[])) await visit(join(path, name));
  };
  await visit(dir);
  return out;
}
