/**
 * Runs the lxc-* tools: argv arrays only (never a shell), the adapter's PATH, a deadline, and a clean kill of
 * everything a tool started when the deadline passes or the caller aborts.
 *
 * Two ways to run a tool:
 * - captured (default): stdout and stderr are pipes read here. For tools that start nothing that outlives them
 *   (lxc-info, lxc-ls, lxc-freeze, lxc-stop, lxc-destroy, `lxc-checkpoint` dumps).
 * - logged (`logFile` given): stdio on /dev/null and liblxc's messages in `logFile` (`-o FILE -l LEVEL`). Needed for
 *   `lxc-checkpoint -r` and `lxc-start`: the container's monitor inherits the tool's stdio and lives on, so a pipe
 *   would never reach EOF (and a container must not hold a pipe to ferry).
 *
 * Contract: run() resolves with the outcome of every tool that ran (non-zero exits included; the caller translates
 * them) and rejects only when the tool cannot be started. On timeout or abort the tool's descendants (criu, the
 * tasks it restores) are killed first, so liblxc sees CRIU fail and cleans up; the tool itself after a grace period.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FerryError } from '../model/ferry-error';
import { guardChild } from './child-deadline';

export interface LxcCallOptions {
  /** Logged mode: stdio on /dev/null, liblxc's log in this file (the caller adds nothing to argv). */
  logFile?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Environment additions (CRIU_CONFIG_FILE); PATH is always the adapter's search path. */
  env?: Record<string, string>;
  killGraceMs?: number;
}

export interface LxcOutcome {
  tool: string;
  args: readonly string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** stderr, or in logged mode liblxc's ERROR lines of the log file, trimmed. */
  errorText: string;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  ok: boolean;
}


export class LxcCli {
  constructor(
    /** Directory-to-path map of the tools, e.g. { 'lxc-info': '/usr/bin/lxc-info' }. */
    private readonly resolveTool: (tool: string) => string,
    private readonly searchPath: string,
  ) {}

  run(tool: string, args: readonly string[], call: LxcCallOptions = {}): Promise<LxcOutcome> {
    const started = Date.now();
    const logged = call.logFile !== undefined;
    const argv = logged ? [...args, '-o', call.logFile!, '-l', 'ERROR'] : [...args];
    const path = this.resolveTool(tool);
    return new Promise<LxcOutcome>((resolvePromise, reject) => {
      const done = (exitCode: number | null, stdout: string, stderr: string, timedOut: boolean, aborted: boolean) => {
        let errorText = stderr.trim();
        if (logged) {
          try {
            const log = readFileSync(call.logFile!, 'utf8');
            errorText = [errorText, ...log.split('\n').filter((l) => /\bERROR\b/.test(l)).map((l) => l.replace(/^.*?ERROR\s+/, ''))]
              .filter(Boolean)
              .join('\n');
          } catch {
            /* liblxc wrote no log */
          }
        }
        resolvePromise({
          tool,
          args: argv,
          exitCode,
          stdout,
          stderr,
          errorText,
          timedOut,
          aborted,
          durationMs: Date.now() - started,
          ok: exitCode === 0 && !timedOut && !aborted,
        });
      };
      if (call.signal?.aborted) {
        done(null, '', '', false, true);
        return;
      }
      const child = spawn(path, argv, {
        stdio: logged ? 'ignore' : ['ignore', 'pipe', 'pipe'],
        // The inherited environment (as RuncCli's children get it), with the adapter's PATH and ferry's additions.
        env: { ...process.env, PATH: this.searchPath, ...call.env },
        // Its own process group: a terminal's ^C must not reach liblxc and CRIU halfway through a restore.
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const guard = guardChild(child, call);
      child.on('error', (err: NodeJS.ErrnoException) => {
        guard.finish();
        reject(
          new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot run ${path}: ${err.message}`, {
            hint: 'Install LXC (Debian: `apt-get install lxc`) or pass the tools\' directory in the LXC adapter options.',
            cause: err,
            details: { tool: path, errno: err.code },
          }),
        );
      });
      // Logged mode: 'exit', since a daemonised monitor may keep inherited descriptors open; captured: 'close'.
      child.on(logged ? 'exit' : 'close', (code: number | null) => {
        guard.finish();
        done(code, stdout, stderr, guard.timedOut, guard.aborted);
      });
    });
  }
}
