import { watch } from 'node:fs';

/**
 * Waits on the files `names` in `dir` (inotify) with a time limit: the agent and its relay hand each other files there
 * (the config, the events) while the container is frozen, and a plain poll added half its period to each hand-over.
 * Only those names wake a wait: the relay writes other files there for every page batch it answers. The limit stays,
 * so a change the watch misses (or a watch that cannot be made) costs one period, as the poll did.
 */
export function watchDir(dir: string, names: readonly string[]): { next(ms: number): Promise<void>; close(): void } {
  let wake: (() => void) | undefined;
  let changed = false;
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && !names.includes(name)) return;
      changed = true;
      wake?.();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined; // the limit alone, as before
  }
  return {
    next: (ms) =>
      new Promise<void>((resolve) => {
        if (changed) {
          changed = false;
          return resolve();
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          changed = false;
          resolve();
        }
        wake = done;
      }),
    close: () => watcher?.close(),
  };
}
