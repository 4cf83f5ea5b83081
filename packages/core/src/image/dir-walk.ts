/**
 * Lists an image directory without following symlinks: CRIU's `parent` link points at the previous (pre-dump)
 * directory, which is transferred and verified on its own, not as part of this one.
 */
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { imageNotFound, isErrno } from './image-errors';

export type WalkEntry =
  | { path: string; type: 'file'; size: number }
  | { path: string; type: 'symlink'; target: string };

/**
 * Regular files and symlinks under `dir`, recursing into real subdirectories, with '/'-separated relative paths
 * sorted by code unit (not locale) so the order is the same on every host. Sockets, fifos and devices are skipped:
 * CRIU never writes them into an image directory.
 */
export async function walkImageDir(dir: string): Promise<WalkEntry[]> {
  await assertDirectory(dir);
  const out: WalkEntry[] = [];
  await walk(dir, '', out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function walk(root: string, prefix: string, out: WalkEntry[]): Promise<void> {
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    const abs = join(root, rel);
    if (entry.isSymbolicLink()) out.push({ path: rel, type: 'symlink', target: await readlink(abs) });
    else if (entry.isDirectory()) await walk(root, rel, out);
    else if (entry.isFile()) out.push({ path: rel, type: 'file', size: (await lstat(abs)).size });
  }
}

export async function assertDirectory(dir: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory(); // the directory itself may be a symlink; its contents are not followed
  } catch (err) {
    const reason = isErrno(err, 'ENOENT') ? 'no such image directory' : `cannot open the image directory: ${(err as Error).message}`;
    throw imageNotFound(dir, reason, err);
  }
  if (!isDirectory) throw imageNotFound(dir, 'not a directory');
}
