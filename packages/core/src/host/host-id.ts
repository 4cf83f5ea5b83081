import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** ferry's state directory on a host. */
export const FERRY_STATE_DIR = '/var/lib/ferry';

/**
 * A random id made once per host and kept in its state directory. machine-id is not enough: hosts cloned from one
 * image, and the sandbox hosts of the tests, share it.
 */
export function hostId(stateDir = FERRY_STATE_DIR): string {
  const file = join(stateDir, 'host-id');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const id = randomUUID();
    writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o600 });
    return id;
  }
}
