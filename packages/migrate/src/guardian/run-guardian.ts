/**
 * The guardian: the process that drives one move (`ferry guardian ID`, detached from the CLI that started it, own
 * session, output in the move's guardian.log). It runs migrateContainer and serves the CLI over the control socket.
 *
 * - The CLI asks to abort (SIGINT, SIGTERM, SIGHUP), or its socket closes (it died, or lost its terminal): before the
 *   point of no return the move is aborted and rolled back; after it, the guardian finishes the move alone.
 * - A watchdog (`ferry guardian --watch ID`) watches this process and runs recovery if it dies; a watchdog that dies
 *   is started again.
 * - A move in doubt (the commit's answer lost, the destination unreachable) is retried here until it is resolved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { isFerryError } from '@ferry/core';
import { migrateContainer } from '../engine/migrate-container';
import type { MigrateDeps, MigrationReport } from '../engine/migrate-deps';
import { readJournal } from '../journal/journal';
import { toWireError } from '../protocol/agent-peer';
import { recoverMove } from '../recovery/recover-move';
import { GUARDED_FILE, controlSocketPath, readLines, writeLine, type ClientMessage, type GuardedMove, type GuardianMessage } from './guarded-move';

export interface GuardianOptions {
  id: string;
  dir: string;
  deps(ssh: GuardedMove['ssh']): MigrateDeps;
  /** argv that starts this move's watchdog (the CLI knows how ferry is run); the guardian's pid is appended. */
  watchdogCommand: readonly string[];
  log(line: string): void;
  /** How long to wait for the CLI to attach before giving up without starting (default 30 s). */
  attachTimeoutMs?: number;
  /** Aborted when the guardian itself is asked to stop (SIGTERM at shutdown): treated like the CLI's abort. */
  stop?: AbortSignal;
  /** The move itself (tests replace it). */
  migrate?: typeof migrateContainer;
}

const IN_DOUBT_RETRY_MS = 5_000;

export async function runGuardian(options: GuardianOptions): Promise<{ ok: boolean }> {
  const guarded = JSON.parse(readFileSync(join(options.dir, GUARDED_FILE), 'utf8')) as GuardedMove;
  const deps = options.deps(guarded.ssh);
  const control = await serveControl(options);
  const attached = await control.firstClient(options.attachTimeoutMs ?? 30_000);
  if (!attached) {
    options.log('no CLI attached: the move was not started');
    control.close();
    return { ok: false };
  }
  const watchdog = keepWatchdog(options);
  options.stop?.addEventListener('abort', () => control.requestAbort('the guardian was asked to stop'), { once: true });
  try {
    const report = await (options.migrate ?? migrateContainer)(
      { ...guarded.request, migrationId: options.id, signal: control.abortSignal, onEvent: (event) => control.send({ event }, event.type === 'committed') },
      deps,
    );
    writeFileSync(join(options.dir, 'report.json'), JSON.stringify(report, null, 2), { mode: 0o600 });
    control.send({ report });
    return { ok: true };
  } catch (err) {
    options.log(`move failed: ${(err as Error).message}`);
    control.send({ error: toWireError(err) });
    if (isFerryError(err, 'ERR_MOVE_IN_DOUBT')) await resolveInDoubt(options, deps);
    return { ok: false };
  } finally {
    await control.finish();
    watchdog.stop();
  }
}

interface Control {
  abortSignal: AbortSignal;
  /** Before the point of no return: abort; after it: say that the move goes on. */
  requestAbort(why: string): void;
  firstClient(timeoutMs: number): Promise<boolean>;
  /** Sends to every attached CLI; `pointOfNoReturn` marks the message that announces it. */
  send(message: GuardianMessage, pointOfNoReturn?: boolean): void;
  /** Lets the attached CLIs read what was sent, then closes. */
  finish(): Promise<void>;
  close(): void;
}

async function serveControl(options: GuardianOptions): Promise<Control> {
  const abort = new AbortController();
  const clients = new Set<Socket>();
  const backlog: GuardianMessage[] = [];
  let pastPointOfNoReturn = false;
  let onFirst: (() => void) | undefined;
  const requestAbort = (why: string) => {
    if (pastPointOfNoReturn) {
      options.log(`${why}: past the point of no return, the move goes on`);
      for (const c of clients) writeLine(c, { notice: 'the move is past its point of no return: the guardian finishes it' });
      return;
    }
    if (!abort.signal.aborted) options.log(`${why}: aborting`);
    abort.abort();
  };
  const path = controlSocketPath(options.dir);
  rmSync(path, { force: true });
  const server = createServer((socket) => {
    clients.add(socket);
    for (const m of backlog) writeLine(socket, m);
    readLines<ClientMessage>(socket, (m) => {
      if (typeof m.abort === 'string') requestAbort(`the CLI asked to stop (${m.abort})`);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clients.delete(socket);
      // The CLI died or lost its terminal: the same as an abort before the point of no return.
      if (clients.size === 0) requestAbort('the CLI went away');
    });
    onFirst?.();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  chmodSync(path, 0o600);
  return {
    abortSignal: abort.signal,
    requestAbort,
    firstClient: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        if (clients.size > 0) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeoutMs);
        onFirst = () => {
          clearTimeout(timer);
          resolve(true);
        };
      }),
    send(message, pointOfNoReturn = false) {
      if (pointOfNoReturn) pastPointOfNoReturn = true;
      backlog.push(message);
      for (const c of clients) writeLine(c, message);
    },
    async finish() {
      await Promise.all([...clients].map((c) => new Promise<void>((resolve) => c.end(resolve))));
      server.close();
      rmSync(path, { force: true });
    },
    close() {
      server.close();
      rmSync(path, { force: true });
    },
  };
}

/** Starts the watchdog, and again whenever it dies before the move is over. */
function keepWatchdog(options: GuardianOptions): { stop(): void } {
  let stopped = false;
  let child: ChildProcess | undefined;
  const start = () => {
    const [cmd, ...args] = options.watchdogCommand;
    child = spawn(cmd!, [...args, String(process.pid)], { detached: true, stdio: 'ignore' });
    child.unref();
    child.once('exit', (code, signal) => {
      if (stopped || moveOver(options.dir)) return;
      options.log(`watchdog ended (${signal ?? code}); starting another`);
      start();
    });
  };
  start();
  return {
    stop: () => {
      stopped = true;
    },
  };
}

function moveOver(dir: string): boolean {
  try {
    return readJournal(dir).done !== undefined;
  } catch {
    return true; // no journal: the move never began
  }
}

/** The destination could not say whether it committed: ask again until it can (the source stays frozen meanwhile). */
async function resolveInDoubt(options: GuardianOptions, deps: MigrateDeps): Promise<void> {
  for (;;) {
    await new Promise((r) => setTimeout(r, IN_DOUBT_RETRY_MS));
    const result = await recoverMove(options.id, deps).catch((err: unknown) => ({ outcome: 'failed', detail: (err as Error).message }));
    options.log(`in doubt, retried: ${result.outcome}: ${result.detail}`);
    if (result.outcome === 'rolled-back' || result.outcome === 'finished' || moveOver(options.dir)) return;
  }
}

/** Whether a report or an error of a finished guardian is on disk (for `ferry recover` and the CLI). */
export function guardianResult(dir: string): MigrationReport | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as MigrationReport;
  } catch {
    return undefined;
  }
}
