import { mkdtempSync } from 'node:fs';
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
