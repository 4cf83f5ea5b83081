import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

/** Undo steps a test registers as it creates things (containers, netns, dirs); runAll() undoes newest first. */
export type Cleanup = () => Promise<void> | void;

/**
 * Runs every cleanup, newest first, and empties the list. A failing cleanup never stops the others: a test that
 * fails half-way must still leave nothing behind.
 */
export async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      /* keep cleaning */
    }
  }
}

/** SIGKILLs each pid that still exists; a pid that is gone already is not an error (cleanups run after failures). */
export function killQuietly(...pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Removes a test's directory, first unmounting whatever is mounted below it (deepest first): a CRIU restore that was
 * killed leaves its cgroup yard (.criu.cgyard.*, the machine's real cgroup hierarchies) mounted in its work dir, and
 * a recursive delete must never walk into those.
 */
export function removeTestDir(dir: string): void {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => (line.split(' ')[4] ?? '').startsWith(prefix));
  if (left) throw new Error(`${dir} still has mounts below it; not removing it`);
  rmSync(dir, { recursive: true, force: true });
}
