/**
 * Whether a container's tasks really run: its freezer reads thawed AND none of its tasks is stopped. A task seized
 * by a `criu dump` that still lives, or left in a group stop, is in state t or T while the freezer says THAWED
 * (measured with a lazy dump: the freezer read THAWED, runc said running, the workload's process was `t`).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Freezer } from './freezer';

export interface TasksVerdict {
  running: boolean;
  /** What stops it: the freezer state, or the stopped tasks with their state letters. */
  detail?: string;
  stopped: number[];
}

/** Reads the container's cgroup (its freezer directory) and the state of each of its tasks. */
export function tasksRunning(freezerPath: string): TasksVerdict {
  const freezer = Freezer.at(freezerPath);
  const state = freezer.state();
  const pids = readFileSync(join(freezerPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  const stoppedThreads = threadStates(pids).filter(({ letter }) => letter === 't' || letter === 'T');
  const stopped = stoppedThreads.map(({ tid }) => tid);
  const letters = stoppedThreads.map(({ tid, letter }) => `${tid}:${letter}`);
  if (state !== 'thawed') return { running: false, detail: `freezer ${state}`, stopped };
  if (stopped.length > 0) return { running: false, detail: `stopped tasks ${letters.join(' ')}`, stopped };
  return { running: true, stopped };
}

/** Each live thread of `pids` with its state letter (threads gone meanwhile are left out). */
function threadStates(pids: readonly number[]): { tid: number; letter: string }[] {
  return pids.flatMap((pid) =>
    threadsOf(pid).flatMap((tid) => {
      const letter = taskStateLetter(tid);
      return letter === undefined ? [] : [{ tid, letter }];
    }),
  );
}

function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

function taskStateLetter(tid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Whether none of `pids` (and their threads) can run: the freezer reads frozen, or every thread is stopped (t, T:
 * a living CRIU holds it) or dead. A hold that broke at any time cannot have come back by itself, so a read of the
 * tasks' memory followed by this check saw memory nobody changed meanwhile.
 */
export function tasksHeld(pids: readonly number[], freezerPath?: string): { held: boolean; detail?: string } {
  if (freezerPath) {
    try {
      if (Freezer.at(freezerPath).state() === 'frozen') return { held: true };
    } catch {
      /* no freezer to read: the tasks' states decide */
    }
  }
  const running = threadStates(pids)
    .filter(({ letter }) => !'tTZX'.includes(letter))
    .map(({ tid, letter }) => `${tid}:${letter}`);
  return running.length === 0 ? { held: true } : { held: false, detail: `tasks free to run: ${running.join(' ')}` };
}

/**
 * Whether every thread of the cgroup's tasks is held by a CRIU dump: ptrace-attached by a criu process. CRIU
 * freezes the cgroup, seizes every task while it is frozen, then thaws the cgroup; from then on the tasks run only
 * CRIU's parasite code until the dump ends, so their memory stays as the freeze left it while the freezer reads
 * THAWED (a reader polling the freezer for FROZEN can miss that short window).
 */
export function seizedByCriu(cgroupPath: string): boolean {
  let pids: number[];
  try {
    pids = readFileSync(join(cgroupPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return false;
  }
  if (pids.length === 0) return false;
  const tracers = new Map<number, boolean>();
  for (const pid of pids) {
    const threads = threadsOf(pid);
    if (threads.length === 0) return false;
    for (const tid of threads) {
      const tracer = tracerOf(tid);
      if (!tracer) return false;
      let criu = tracers.get(tracer);
      if (criu === undefined) tracers.set(tracer, (criu = isCriu(tracer)));
      if (!criu) return false;
    }
  }
  return true;
}

function tracerOf(tid: number): number {
  try {
    const m = /^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function isCriu(pid: number): boolean {
  try {
    return isCriuCommandLine(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
  } catch {
    return false;
  }
}

/**
 * Whether a command line is CRIU's: run directly, through a loader (a private CRIU build runs as `ld-linux…
 * --library-path DIR …/criu ARGS`), or a CRIU child that set its title (`criu: dump --rpc -t PID`, as the dump that
 * `criu swrk` forks for runc does; behind a loader the title replaces the loader's fourth argument).
 */
export function isCriuCommandLine(argv: readonly string[]): boolean {
  return argv.slice(0, 4).some((arg) => arg === 'criu' || arg.endsWith('/criu') || arg.startsWith('criu: '));
}
