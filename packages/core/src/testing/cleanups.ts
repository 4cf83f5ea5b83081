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
