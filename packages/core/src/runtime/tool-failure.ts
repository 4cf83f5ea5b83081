/**
 * One way to report a failed runtime tool run (runc's logCriuErrors, crun's "excerpt from CRIU log"): an abort is
 * ERR_ABORTED, a deadline ERR_CRIU_TIMEOUT, a failure in CRIU the caller's ERR_CRIU_* code quoting the log's Error
 * lines (from its tail when it is huge; the harmless RLIMIT_NOFILE line left out), anything else ERR_RUNTIME_FAILED
 * with the tool's own message.
 */
import { statSync } from 'node:fs';
import { readLogExcerpt } from '../criu/criu-log';
import type { ErrorCode } from '../model/error-codes';
import { FerryError } from '../model/ferry-error';
import type { ToolOutcome } from './run-tool';

export type CriuFailureCode = Extract<ErrorCode, 'ERR_CRIU_DUMP_FAILED' | 'ERR_CRIU_PRE_DUMP_FAILED' | 'ERR_CRIU_RESTORE_FAILED'>;

export interface CriuFailure {
  code: CriuFailureCode;
  /** How messages name the runtime: "runc", "LXC", "docker". */
  runtime: string;
  what: 'checkpoint' | 'restore';
  id: string;
  outcome: ToolOutcome;
  /** Where CRIU writes its log for this run. */
  logPath: string;
  /** When the tool was started: a log older than that is a previous run's. */
  startedAt: number;
  timeoutMs: number;
  /** Whether the tool's own messages show that CRIU ran (liblxc names CRIU; CRIU may die before writing a log). */
  criuNamed?: boolean;
  /** Hint for a failure before CRIU ran. */
  toolHint: string;
}

/** The error for a dump or restore tool run that did not succeed (aborted, killed at its deadline, or failed). */
export function criuFailure(f: CriuFailure): FerryError {
  const { outcome, logPath } = f;
  const logged = writtenSince(logPath, f.startedAt);
  const excerpt = logged ? readLogExcerpt(logPath) : undefined;
  const lines = excerpt?.lines.length ? `\n${excerpt.lines.map((l) => `  ${l}`).join('\n')}` : '';
  const log = logged ? ` (log: ${logPath})` : '';
  const details = {
    id: f.id,
    argv: outcome.args,
    exitCode: outcome.exitCode,
    toolError: outcome.errorText,
    logPath: logged ? logPath : undefined,
    logExcerpt: excerpt?.lines,
  };
  const subject = `${f.runtime} ${f.what} of ${f.id}`;
  if (outcome.aborted) return new FerryError('ERR_ABORTED', `${subject} interrupted`, { hint: 'Run the command again when ready.', details });
  if (outcome.timedOut) {
    return new FerryError('ERR_CRIU_TIMEOUT', `${subject} did not finish within ${f.timeoutMs} ms; CRIU was killed${log}${lines}`, {
      hint:
        f.what === 'restore'
          ? 'Check that the images arrived whole (CRIU loops on a truncated pages image); raise restoreTimeoutMs for very large containers.'
          : 'Raise checkpointTimeoutMs for very large containers, and read the CRIU log.',
      details,
    });
  }
  if (!logged && !f.criuNamed) return toolFailure(f.runtime, `${f.what} of ${f.id}`, outcome, f.toolHint);
  return new FerryError(f.code, `${subject} failed: ${reasonOf(outcome, 'see the log')}${log}${lines}`, {
    hint: `Read ${logPath} for the full story; \`ferry doctor\` checks the host.`,
    details,
  });
}

/** ERR_RUNTIME_FAILED for a runtime tool that failed by itself: its own message, or its exit code. */
export function toolFailure(runtime: string, what: string, outcome: ToolOutcome, hint: string): FerryError {
  const reason = outcome.timedOut ? 'timed out' : reasonOf(outcome, `exit code ${outcome.exitCode}`);
  return new FerryError('ERR_RUNTIME_FAILED', `${runtime} ${what} failed: ${reason}`, {
    hint,
    details: { argv: outcome.args, exitCode: outcome.exitCode, stderr: tail(outcome.stderr), toolError: outcome.errorText },
  });
}

/** The tool's first three error lines, else its stderr. */
function reasonOf(outcome: ToolOutcome, otherwise: string): string {
  const first = outcome.errorText.split('\n').filter(Boolean).slice(0, 3).join('; ');
  return first || outcome.stderr.trim() || otherwise;
}

function tail(text: string, max = 2000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

/** True when the file exists and was written since `since` (with a second of slack for coarse mtimes). */
export function writtenSince(path: string, since: number): boolean {
  try {
    return statSync(path).mtimeMs >= since - 1000;
  } catch {
    return false;
  }
}
