/**
 * The snapshot store's root directory (`ferry snapshot --store`): created 0700, never followed through a symlink,
 * and never a directory that holds something else. A store marks itself with STORE_MARKER; a directory written by
 * an older ferry (no marker, but only container directories of snapshots) is recognised and marked.
 */
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../host/safe-files';
import { FerryError } from '../model/ferry-error';
import { parseSnapshotId } from './snapshot-names';

export const STORE_MARKER = '.ferry-snapshot-store';

/** Names a container directory of a store may hold besides snapshots (head.json, atomic-write temporaries). */
const CONTAINER_DIR_FILE = /^(head\.json|\..*\.tmp.*|.*\.tmp)$/;

/**
 * Makes `root` ready for snapshots. `adopt` (the CLI's --adopt-store) accepts a non-empty directory that does not
 * look like a store. Throws ERR_PRECHECK_UNSAFE_PATH for a symlink or a foreign non-empty directory.
 */
export function ensureStoreRoot(root: string, adopt = false): void {
  let entries: string[] | undefined;
  try {
    const stat = lstatSync(root);
    if (stat.isSymbolicLink()) {
      throw new FerryError('ERR_PRECHECK_UNSAFE_PATH', `the snapshot store ${root} is a symlink; ferry does not follow it`, {
        hint: 'Name the real directory with --store, or pass --adopt-store to use the directory the link points at.',
        details: { path: root },
      });
    }
    if (!stat.isDirectory()) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the snapshot store ${root} exists and is not a directory`, { hint: 'Name a directory with --store.' });
    }
    entries = readdirSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const marked = entries?.includes(STORE_MARKER) === true;
  if (entries && entries.length > 0 && !marked && !adopt && !looksLikeStore(root, entries)) {
    throw new FerryError('ERR_PRECHECK_UNSAFE_PATH', `${root} is not empty and is not a ferry snapshot store`, {
      hint: 'Name a new or empty directory with --store, or pass --adopt-store if this directory is meant to hold snapshots.',
      details: { path: root },
    });
  }
  ensurePrivateDir(root);
  if (!marked) writeFileSync(join(root, STORE_MARKER), 'ferry snapshot store\n', { mode: 0o600, flag: 'wx' });
}

/** Every entry a directory holding only snapshots and the store's own files. */
function looksLikeStore(root: string, entries: readonly string[]): boolean {
  return entries.every((name) => {
    try {
      if (!lstatSync(join(root, name)).isDirectory()) return false;
      return readdirSync(join(root, name)).every((child) => parseSnapshotId(child) !== undefined || CONTAINER_DIR_FILE.test(child));
    } catch {
      return false;
    }
  });
}
