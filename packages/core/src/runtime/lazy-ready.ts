/**
 * How an adapter learns that a lazy dump is ready (images complete, page server listening), polled every few
 * milliseconds: inotify would add nothing for a one-byte file, and /proc/net has no notification at all.
 */
import { readFileSync, statSync } from 'node:fs';

const POLL_MS = 5;

/** Calls onReady once `path` is no longer empty (CRIU's --status-fd written into a file). */
export function watchStatusFile(path: string, onReady: () => void): { stop(): void } {
  return poll(() => {
    try {
      return statSync(path).size > 0;
    } catch {
      return false; // not there yet
    }
  }, onReady);
}

/**
 * Calls onReady once something listens on TCP `port` in the network namespace of process `pid()` (its /proc/PID/net);
 * while pid() is undefined, nothing counts as ready.
 */
export function watchListening(port: number, pid: () => number | undefined, onReady: () => void): { stop(): void } {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return poll(() => {
    const inNamespaceOf = pid();
    if (inNamespaceOf === undefined) return false;
    return ['tcp', 'tcp6'].some((file) => {
      try {
        return readFileSync(`/proc/${inNamespaceOf}/net/${file}`, 'utf8')
          .split('\n')
          .some((line) => {
            const fields = line.trim().split(/\s+/);
            return `${fields[1] ?? ''} `.endsWith(hex) && fields[3] === '0A';
          });
      } catch {
        return false;
      }
    });
  }, onReady);
}

function poll(ready: () => boolean, onReady: () => void): { stop(): void } {
  const timer = setInterval(() => {
    if (!ready()) return;
    clearInterval(timer);
    onReady();
  }, POLL_MS);
  return { stop: () => clearInterval(timer) };
}

/**
 * A lazy dump's readiness, also as a promise: it lifts the dump tool's deadline (ChildDeadline.liftDeadline), since
 * the tool then lives on for the whole page transfer. Without a lazy dump, `lifted` is undefined.
 */
export function lazyReadiness(lazy: { onReady(): void } | undefined): { onReady(): void; lifted?: Promise<void> } {
  if (!lazy) return { onReady: () => undefined };
  let lift!: () => void;
  const lifted = new Promise<void>((resolve) => (lift = resolve));
  return {
    onReady: () => {
      lift();
      lazy.onReady();
    },
    lifted,
  };
}
