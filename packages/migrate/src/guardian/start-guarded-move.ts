/**
 * The CLI's side of a guarded move: write the request into a new move directory, start the guardian detached from
 * this process (own session, so neither a terminal hang-up nor this process's death reaches it), attach to its
 * control socket, and relay its events and result.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { FerryError, isErrorCode, type MigrationEvent } from '@ferry/core';
import type { MigrationReport } from '../engine/migrate-deps';
import { migrationDir } from '../journal/journal';
import { GUARDED_FILE, GUARDIAN_LOG, controlSocketPath, readLines, writeLine, type GuardedMove, type GuardianMessage } from './guarded-move';

export interface StartGuardedMoveOptions {
  stateDir: string;
  move: GuardedMove;
  /** argv that runs `ferry guardian` (the move's id is appended). */
  guardianCommand: readonly string[];
  onEvent(event: MigrationEvent): void;
  /** Messages from the guardian that are not events (e.g. "past the point of no return"). */
  onNotice(message: string): void;
  /** How long to wait for the guardian's control socket (default 30 s). */
  startTimeoutMs?: number;
}

export interface GuardedMoveHandle {
  id: string;
  guardianPid: number;
  /** Asks the guardian to abort; before the point of no return it rolls back, after it the move finishes. */
  abort(reason: string): void;
  /** Settles with the guardian's report, or rejects with its error. */
  result: Promise<MigrationReport>;
  /** Stops listening; the guardian treats it as the CLI going away. */
  detach(): void;
}

export async function startGuardedMove(options: StartGuardedMoveOptions): Promise<GuardedMoveHandle> {
  const id = randomUUID();
  const dir = migrationDir(options.stateDir, id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, GUARDED_FILE), JSON.stringify(options.move), { mode: 0o600 });
  const log = openSync(join(dir, GUARDIAN_LOG), 'a', 0o600);
  const [cmd, ...args] = options.guardianCommand;
  const child = spawn(cmd!, [...args, id], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = signal ?? String(code)));
  child.unref();
  const socket = await attach(dir, () => exited, options.startTimeoutMs ?? 30_000);
  let settle!: { resolve: (r: MigrationReport) => void; reject: (e: unknown) => void };
  const result = new Promise<MigrationReport>((resolve, reject) => (settle = { resolve, reject }));
  let done = false;
  readLines<GuardianMessage>(socket, (m) => {
    if ('event' in m) options.onEvent(m.event);
    else if ('notice' in m) options.onNotice(m.notice);
    else if ('report' in m) {
      done = true;
      settle.resolve(m.report);
    } else if ('error' in m) {
      done = true;
      settle.reject(new FerryError(isErrorCode(m.error.code) ? m.error.code : 'ERR_GUARDIAN_FAILED', m.error.message, { hint: m.error.hint }));
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (done) return;
    settle.reject(
      new FerryError('ERR_GUARDIAN_FAILED', `the guardian of move ${id} went away without a result`, {
        hint: `Its watchdog recovers the move; \`ferry recover ${id}\` shows how it ended (log: ${join(dir, GUARDIAN_LOG)}).`,
      }),
    );
  });
  return {
    id,
    guardianPid: child.pid ?? -1,
    abort: (reason) => writeLine(socket, { abort: reason }),
    result,
    detach: () => socket.destroy(),
  };
}

async function attach(dir: string, exited: () => string | undefined, timeoutMs: number): Promise<Socket> {
  const path = controlSocketPath(dir);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const gone = exited();
    if (gone !== undefined) {
      throw new FerryError('ERR_GUARDIAN_FAILED', `the guardian ended (${gone}) before it could start the move: ${tail(join(dir, GUARDIAN_LOG))}`, {
        hint: `See ${join(dir, GUARDIAN_LOG)}.`,
      });
    }
    if (existsSync(path)) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once('error', reject);
        });
      } catch {
        /* not listening yet */
      }
    }
    if (Date.now() > deadline) {
      throw new FerryError('ERR_GUARDIAN_FAILED', `the guardian of the move did not start within ${timeoutMs} ms`, { hint: `See ${join(dir, GUARDIAN_LOG)}.` });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}
