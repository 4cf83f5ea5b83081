/**
 * Runs one runtime tool (runc, lxc-*) the way every adapter needs it: argv only (never a shell), its own process
 * group (a terminal's ^C must not reach the tool and CRIU halfway through a restore), a deadline and an abort that
 * kill CRIU below it first (child-deadline.ts), optionally inside a network namespace (`nsenter --net=PATH`, which
 * execs the tool: same pid, same process group).
 *
 * Contract: resolves with the outcome of every tool that ran (non-zero exits included; the caller translates them)
 * and rejects only when the tool cannot be started (with the caller's ERR_RUNTIME_UNAVAILABLE).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { FerryError } from '../model/ferry-error';
import { guardChild, type ChildDeadline } from './child-deadline';

export interface ToolCall extends ChildDeadline {
  /**
   * stdio on /dev/null instead of captured pipes: for tools whose children inherit it and live on (`runc restore -d`,
   * `lxc-checkpoint -r`): a pipe would never reach EOF, and a container must not hold a pipe to ferry.
   */
  quiet?: boolean;
  /** Settle on the tool's exit, not on its pipes closing (a daemonised child may keep inherited descriptors). */
  untilExit?: boolean;
  env?: NodeJS.ProcessEnv;
  /** A descriptor the tool gets as fd 3 (CRIU's `--status-fd 3`); the caller owns it. */
  statusFd?: number;
  /** Run the tool inside this network namespace; what it listens on is reachable only from there. */
  netns?: { path: string; nsenterPath: string };
  /** Called with the tool's pid once it runs (in `netns` when given: /proc/PID/net shows that namespace). */
  onSpawn?: (pid: number) => void;
}

/** What every runtime tool run reports; the tools' wrappers add their own error text. */
export interface ToolOutcome {
  /** The arguments the tool got (after its path). */
  args: readonly string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The tool's own error messages, newline-joined (each wrapper knows its tool's format). */
  errorText: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  ok: boolean;
}

export interface ToolRun {
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

/** Runs `path args` under `call`; `unavailable` makes the error for a tool that cannot be started. */
export function runTool(path: string, args: readonly string[], call: ToolCall, unavailable: (err: NodeJS.ErrnoException) => FerryError): Promise<ToolRun> {
  const started = Date.now();
  const done = (exitCode: number | null, exitSignal: NodeJS.Signals | null, stdout: string, stderr: string, timedOut: boolean, aborted: boolean): ToolRun => ({
    exitCode,
    exitSignal,
    stdout,
    stderr,
    timedOut,
    aborted,
    durationMs: Date.now() - started,
  });
  return new Promise<ToolRun>((resolve, reject) => {
    if (call.signal?.aborted) {
      resolve(done(null, null, '', '', false, true));
      return;
    }
    const stdio: StdioOptions = call.quiet ? 'ignore' : call.statusFd !== undefined ? ['ignore', 'pipe', 'pipe', call.statusFd] : ['ignore', 'pipe', 'pipe'];
    const [file, argv] = call.netns ? [call.netns.nsenterPath, [`--net=${call.netns.path}`, path, ...args]] : [path, [...args]];
    const child = spawn(file, argv, { stdio, detached: true, ...(call.env ? { env: call.env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const guard = guardChild(child, call);
    if (child.pid !== undefined) call.onSpawn?.(child.pid);
    child.on('error', (err: NodeJS.ErrnoException) => {
      guard.finish();
      reject(unavailable(err));
    });
    child.on(call.untilExit ? 'exit' : 'close', (code: number | null, signal: NodeJS.Signals | null) => {
      guard.finish();
      resolve(done(code, signal, stdout, stderr, guard.timedOut, guard.aborted));
    });
  });
}
