/**
 * Whether a container's tasks really run: its freezer reads thawed AND none of its tasks is stopped. A task seized
 * by a `criu dump` that still lives, or left in a group stop, is in state t or T while the freezer says THAWED
 * (measured with a lazy dump: the freezer read THAWED, runc said running, the workload's process was `t`).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
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
  const pids = cgroupPids(freezerPath);
  const stoppedThreads = threadStates(pids).filter(({ letter }) => letter === 't' || letter === 'T');
  const stopped = stoppedThreads.map(({ tid }) => tid);
  const letters = stoppedThreads.map(({ tid, letter }) => `${tid}:${letter}`);
  if (state !== 'thawed') return { running: false, detail: `freezer ${state}`, stopped };
  if (stopped.length > 0) return { running: false, detail: `stopped tasks ${letters.join(' ')}`, stopped };
  return { running: true, stopped };
}

/** The processes in the cgroup at `path` (its cgroup.procs); throws when it cannot be read. */
function cgroupPids(path: string): number[] {
  return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
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
 * Whether every thread of the cgroup's tasks is stopped under a CRIU dump: ptrace-attached by a CRIU process and in
 * tracing stop (t; a zombie counts too). CRIU seizes the whole tree before it runs its parasite in any task, so once
 * every thread was seen stopped so, none runs its own code again until the dump ends: the tasks' memory stays as
 * the freeze left it while the freezer reads THAWED (CRIU thaws it right after seizing, a short window a reader
 * polling for FROZEN can miss). Attached but not yet stopped does not count: without --freeze-cgroup a task seized
 * a moment ago may still be running.
 */
export function seizedByCriu(cgroupPath: string): boolean {
  let pids: number[];
  try {
    pids = cgroupPids(cgroupPath);
  } catch {
    return false;
  }
  if (pids.length === 0) return false;
  const tracers = new Map<number, boolean>();
  for (const pid of pids) {
    const threads = threadsOf(pid);
    if (threads.length === 0) return false;
    for (const tid of threads) {
      const status = readStatus(tid);
      if (status === undefined) continue; // gone meanwhile
      if (status.state === 'Z' || status.state === 'X') continue;
      if (status.state !== 't' || status.tracer === 0) return false;
      let criu = tracers.get(status.tracer);
      if (criu === undefined) tracers.set(status.tracer, (criu = isCriu(status.tracer)));
      if (!criu) return false;
    }
  }
  return true;
}

function readStatus(tid: number): { state: string; tracer: number } | undefined {
  try {
    const text = readFileSync(`/proc/${tid}/status`, 'utf8');
    const state = /^State:\s*(\S)/m.exec(text)?.[1];
    const tracer = Number(/^TracerPid:\s*(\d+)/m.exec(text)?.[1] ?? 0);
    return state === undefined ? undefined : { state, tracer };
  } catch {
    return undefined;
  }
}

function isCriu(pid: number): boolean {
  try {
    const exe = basename(readlinkSync(`/proc/${pid}/exe`));
    return isCriuProcess(exe, readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
  } catch {
    return false;
  }
}

/**
 * Whether a process is CRIU, from its executable's name and its command line: the criu binary itself, or a private
 * CRIU build run through its loader (`ld-linux… --library-path DIR …/criu ARGS`, where a CRIU child that set its
 * title, as the dump `criu swrk` forks for runc does, shows `criu: dump --rpc -t PID` in place of `…/criu`). Not a
 * debugger or tracer that merely names criu among its arguments.
 */
export function isCriuProcess(exe: string, argv: readonly string[]): boolean {
  if (exe === 'criu') return true;
  if (!/^ld-linux/.test(exe) || argv[1] !== '--library-path') return false;
  const program = argv[3] ?? '';
  return program.endsWith('/criu') || program.startsWith('criu: ');
}
