/**
 * Test workloads from the repository's fixtures/ directory, compiled on first use into a cache keyed by the source
 * hash (static, so they also run inside a busybox rootfs).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const FIXTURES_DIR = resolve(__dirname, '..', '..', '..', '..', 'fixtures');
const CACHE_DIR = '/tmp/ferry-fixtures';

/** Path of the compiled fixture `name` (fixtures/NAME.c). */
export function buildFixture(name: string): string {
  const source = join(FIXTURES_DIR, `${name}.c`);
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const out = join(CACHE_DIR, `${name}-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('cc', ['-static', '-O2', '-Wall', '-o', tmp, source], { stdio: 'pipe' });
  renameSync(tmp, out); // atomic: parallel test workers may race to build the same fixture
  return out;
}
