/**
 * A CRIU mode ferry runs as a CLI child because RPC has no handle on its process (`criu lazy-pages`,
 * `criu page-server`): spawn it, wait until it is ready, and give the caller the child to wait for or kill.
 *
 * Contract: resolves once ready() holds; if the child exits first or the deadline passes, the child is killed and
 * the error (code and hint from the caller) quotes the log's error lines. A child that cannot be spawned at all is
 * ERR_CRIU_SPAWN_FAILED.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { ErrorCode } from '../model/error-codes';
import { FerryError } from '../model/ferry-error';
import { readLogExcerpt } from './criu-log';

export interface CriuChild {
  pid: number;
  logPath: string;
  /** Resolves when the child exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export async function startCriuChild(options: {
  criuPath: string;
  args: readonly string[];
  stdio: StdioOptions;
  /** Polled until true: the child listens. */
  ready: () => boolean;
  logPath: string;
  what: string;
  code: ErrorCode;
  hint: string;
  startTimeoutMs?: number;
  /** Own session and process group: signals to the caller's group (a terminal's Ctrl-C) do not reach it. */
  detached?: boolean;
}): Promise<CriuChild> {
  const child = spawn(options.criuPath, [...options.args], { stdio: options.stdio, detached: options.detached === true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  let gone: string | undefined;
  let spawnFailed = false;
  child.once('error', (err) => {
    gone = err.message;
    spawnFailed = true;
  });
  void exited.then((e) => (gone ??= e.signal ?? `exit ${e.code}`));
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (!options.ready()) {
    if (gone || Date.now() > deadline) {
      kill();
      const excerpt = readLogExcerpt(options.logPath);
      if (spawnFailed) throw new FerryError('ERR_CRIU_SPAWN_FAILED', `cannot start ${options.what}: ${gone}`, { hint: 'Run `ferry doctor` to check the CRIU installation.' });
      throw new FerryError(options.code, `${options.what} did not start (${gone ?? 'timed out'}; log: ${options.logPath})${excerpt?.lines.length ? `\n  ${excerpt.lines.join('\n  ')}` : ''}`, {
        hint: options.hint,
        details: { logPath: options.logPath, logExcerpt: excerpt?.lines },
      });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { pid: child.pid ?? -1, logPath: options.logPath, exited, kill };
}
