import { closeSync, constants, fchmodSync, fstatSync, mkdtempSync, openSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from '../host/safe-files';

/**
 * Image directories hold a process's whole memory, secrets included: they are created 0700 (also when the
 * directory already existed with looser modes), and one that is a symlink is refused (ERR_PRECHECK_UNSAFE_PATH)
 * rather than chmod'ed and written through.
 */
export function createImageDir(path?: string): string {
  return ensurePrivateDir(path ?? mkdtempSync(join(tmpdir(), 'ferry-images-')));
}

/**
 * Makes every file below an image directory 0600 and every directory 0700 (CRIU creates its images 0644): an image
 * holds a process's memory, and a copy of the directory (tar, rsync) keeps the modes. Through descriptors opened
 * with O_NOFOLLOW: symlinks (`parent`) are left alone, never followed.
 */
export function privateImageFiles(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOENT' || code === 'ENXIO') return;
    throw err;
  }
  let isDir = false;
  try {
    const stat = fstatSync(fd);
    isDir = stat.isDirectory();
    if (isDir) fchmodSync(fd, 0o700);
    else if (stat.isFile()) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  if (isDir) for (const name of readdirSync(dir)) privateImageFiles(join(dir, name));
}
