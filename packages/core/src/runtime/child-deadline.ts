/**
 * Deadlines and aborts for the runtime tools ferry runs (runc, lxc-*): they are started detached, in their own
 * process group, and run CRIU below them. On a timeout or an abort every descendant is killed at once (CRIU may sit
 * in a session of its own), then the whole group after a grace period.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const DEFAULT_KILL_GRACE_MS = 10_000;

export interface ChildDeadline {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Between killing the descendants and the process group. */
  killGraceMs?: number;
  /**
   * The deadline is lifted once this resolves. A lazy dump lives as long as its page transfer (minutes for a GiB on a
   * slow link, after the commit): only its start is bounded; its owner (the move) ends it after that.
   */
  liftDeadline?: Promise<unknown>;
}

export interface ChildGuard {
  /** Whether the deadline or the abort ended the child (read once it has exited). */
  readonly timedOut: boolean;
  readonly aborted: boolean;
  /** Call when the child has exited (or failed to start): clears the timers and the abort listener. */
  finish(): void;
}

export function guardChild(child: ChildProcess, call: ChildDeadline): ChildGuard {
  let timedOut = false;
  let aborted = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (why: 'timeout' | 'abort') => {
    if (timedOut || aborted) return;
    if (why === 'timeout') timedOut = true;
    else aborted = true;
    if (child.pid !== undefined) killDescendants(child.pid);
    graceTimer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, call.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
  };
  const timer = call.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), call.timeoutMs) : undefined;
  if (timer) call.liftDeadline?.then(() => clearTimeout(timer), () => undefined);
  const onAbort = () => stop('abort');
  call.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    get timedOut() {
      return timedOut;
    },
    get aborted() {
      return aborted;
    },
    finish() {
      if (timer) clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      call.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** Every live descendant of `pid` (children of all its threads, recursively), deepest last. */
export function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const current = queue.shift()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${current}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${current}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
        if (child > 0 && !found.includes(child)) {
          found.push(child);
          queue.push(child);
        }
      }
    }
  }
  return found;
}

function killDescendants(pid: number): void {
  for (const child of descendantsOf(pid)) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}
