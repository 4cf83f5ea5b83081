import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Image directories hold a process's whole memory, secrets included: they are created 0700 (also when the
 * directory already existed with looser modes).
 */
export function createImageDir(path?: string): string {
  const dir = path ?? mkdtempSync(join(tmpdir(), 'ferry-images-'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}
