/**
 * Drives fixtures/workload.c from tests: start it in its own PID namespace, read its counter, ask it to verify its
 * memory. See the header of workload.c for what it does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { buildFixture } from './fixtures';

export interface WorkloadOptions {
  stateFile: string;
  memMib?: number;
  dirtyPagesPerSec?: number;
  port?: number;
  tickMs?: number;
  /** MiB of a separate region for exerciseWorkload() (fork, MADV_DONTNEED, mremap after a restore). */
  exerciseMib?: number;
}

export function workloadArgs(options: WorkloadOptions): string[] {
  const args = ['--state', options.stateFile, '--mem-mib', String(options.memMib ?? 16)];
  if (options.dirtyPagesPerSec) args.push('--dirty-pages-per-sec', String(options.dirtyPagesPerSec));
  if (options.port) args.push('--port', String(options.port));
  if (options.tickMs) args.push('--tick-ms', String(options.tickMs));
  if (options.exerciseMib) args.push('--exercise-mib', String(options.exerciseMib));
  return args;
}

export interface WorkloadState {
  counter: number;
  pages: number;
  dirtied: number;
}

export function readWorkloadState(stateFile: string): WorkloadState | undefined {
  try {
    const text = readFileSync(stateFile, 'utf8');
    const get = (key: string) => Number(new RegExp(`${key}=(\\d+)`).exec(text)?.[1] ?? NaN);
    const state = { counter: get('counter'), pages: get('pages'), dirtied: get('dirtied') };
    return Number.isNaN(state.counter) ? undefined : state;
  } catch {
    return undefined;
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function waitForCounter(stateFile: string, atLeast: number, timeoutMs = 10_000): Promise<WorkloadState> {
  return waitFor(`counter >= ${atLeast} in ${stateFile}`, () => {
    const s = readWorkloadState(stateFile);
    return s && s.counter >= atLeast ? s : undefined;
  }, timeoutMs);
}

/** Sends SIGUSR1 and waits for the workload's verdict on its own memory ("ok" or "CORRUPT page=N"). */
export async function verifyWorkloadMemory(pid: number, stateFile: string, timeoutMs = 20_000): Promise<string> {
  const verdictFile = `${stateFile}.verify`;
  rmSync(verdictFile, { force: true });
  process.kill(pid, 'SIGUSR1');
  const text = await waitFor('memory verdict', () => existsSync(verdictFile) && readFileSync(verdictFile, 'utf8'), timeoutMs);
  return /verify=(\S+)/.exec(text)?.[1] ?? text;
}

/**
 * Sends SIGUSR2 and waits for the workload's verdict on fork, MADV_DONTNEED and mremap of its exercise region ("ok" or
 * "FAILED <what>"); the workload must have been started with exerciseMib.
 */
export async function exerciseWorkload(pid: number, stateFile: string, timeoutMs = 20_000): Promise<string> {
  const verdictFile = `${stateFile}.exercise`;
  rmSync(verdictFile, { force: true });
  process.kill(pid, 'SIGUSR2');
  const text = await waitFor('exercise verdict', () => existsSync(verdictFile) && readFileSync(verdictFile, 'utf8'), timeoutMs);
  return /exercise=(ok|FAILED \S+)/.exec(text)?.[1] ?? text;
}

export interface PidNamespaceWorkload {
  /** The workload's pid as seen from this (the host's) PID namespace: the init of its own namespace. */
  pid: number;
  launcher: ChildProcess;
  stop(): void;
}

/**
 * Starts the workload as init of a fresh PID namespace and its own session (what CRIU can dump without --shell-job).
 */
export async function startWorkloadInPidNamespace(options: WorkloadOptions): Promise<PidNamespaceWorkload> {
  const binary = buildFixture('workload');
  const launcher = spawn('unshare', ['--pid', '--fork', 'setsid', binary, ...workloadArgs(options)], {
    stdio: 'ignore',
    detached: true,
  });
  const launcherPid = launcher.pid;
  if (!launcherPid) throw new Error('unshare did not start');
  const pid = await waitFor('the workload process', () => {
    try {
      const children = readFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8').trim();
      const child = Number(children.split(' ')[0]);
      return child > 0 && readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith(binary) ? child : undefined;
    } catch {
      return undefined;
    }
  });
  await waitForCounter(options.stateFile, 1);
  return {
    pid,
    launcher,
    stop: () => {
      for (const p of [pid, launcherPid]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}
