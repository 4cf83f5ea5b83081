/**
 * `ferry session restore`: brings a session checkpointed by checkpointSession back on this host, any number of
 * times (the images are not consumed).
 *
 * Contract: returning means the tree runs. For a 'new-pty' session (a shell session whose terminal was outside the
 * tree) the result holds the master of its new terminal: the caller owns it, and closing it hangs the session up.
 * Throwing means nothing of the tree runs; a tmux socket directory created for it stays (empty, harmless).
 */
import { chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { CriuClient } from '../criu/criu-client';
import { createCriuClient } from '../criu/create-criu-client';
import type { OwnedFd } from '../criu/message-socket';
import { FerryError } from '../model/ferry-error';
import { waitForPidsFree } from './proc-tree';
import { readSessionManifest, type ListeningSocketRecord, type SessionManifest } from './session-manifest';
import { sessionRestoreOptions } from './session-plan';
import { TmuxServer, type TmuxRun } from './tmux';

export interface SessionRestoreOptions {
  imagesDir: string;
  /**
   * The restorer's terminal (a tty in this process's session, normally fd 0). Needed for shell jobs, which CRIU
   * attaches to the terminal of whoever restores them.
   */
  terminalFd?: number;
  criu?: CriuClient;
  tmux?: { tmuxPath?: string; run?: TmuxRun };
  signal?: AbortSignal;
  /** How long to wait for the tree's pids to be released (a just-ended original being reaped). */
  pidWaitMs?: number;
}

export interface SessionRestoreResult {
  manifest: SessionManifest;
  pid: number;
  logPath: string;
  restoreMs: number;
  /** The new terminal's master, for a 'new-pty' session; the caller owns it. */
  terminal?: OwnedFd;
  /** tmux sessions that answer after the restore. */
  tmuxSessions?: string[];
  warnings: string[];
}

const DEFAULT_PID_WAIT_MS = 3_000;

/** Restores a checkpointed session; resolves with its pid once it runs (the caller owns a returned terminal fd). */
export async function restoreSession(options: SessionRestoreOptions): Promise<SessionRestoreResult> {
  const manifest = readSessionManifest(options.imagesDir);
  const warnings: string[] = [];
  if (!manifest.ownPidNamespace) {
    const used = await waitForPidsFree(manifest.pids, options.pidWaitMs ?? DEFAULT_PID_WAIT_MS, options.signal);
    if (used.length > 0) {
      throw new FerryError('ERR_PRECHECK_INCOMPATIBLE', `pids ${used.join(', ')} of the checkpointed tree are in use on this host; CRIU restores a tree with its own pids`, {
        hint: manifest.leaveRunning
          ? 'The original still runs here (checkpointed with --leave-running): stop it, or restore on another host.'
          : 'Other processes hold those pids (a session already restored from these images?): stop them, or restore on another host.',
        details: { pids: used },
      });
    }
  }
  const busyPtys = await waitForPtysFree(manifest.ptys, options.pidWaitMs ?? DEFAULT_PID_WAIT_MS, options.signal);
  if (busyPtys.length > 0) {
    throw new FerryError(
      'ERR_PRECHECK_INCOMPATIBLE',
      `terminal${busyPtys.length > 1 ? 's' : ''} ${busyPtys.map((n) => `/dev/pts/${n}`).join(', ')} ${busyPtys.length > 1 ? 'are' : 'is'} in use on this host; CRIU recreates the session's ptys with their numbers`,
      {
        hint: 'Close those terminals, or restore on a host where they are free (or in a mount namespace with a devpts of its own: docs/sessions.md).',
        details: { ptys: busyPtys },
      },
    );
  }
  for (const socket of manifest.listeningSockets) await prepareListeningSocket(socket);

  const { options: criuOptions, stdin } = sessionRestoreOptions(manifest, options.imagesDir, options.terminalFd);
  const criu = options.criu ?? createCriuClient();
  const started = Date.now();
  const restored = await criu.restore(criuOptions, { signal: options.signal, ...(stdin === undefined ? {} : { stdin }) });
  const restoreMs = Date.now() - started;

  const result: SessionRestoreResult = { manifest, pid: restored.pid, logPath: restored.logPath, restoreMs, warnings };
  if (restored.orphanPtsMaster) result.terminal = restored.orphanPtsMaster;
  if (manifest.tmux) {
    // The point of no return has passed: a tmux client that cannot talk to the server is a warning only.
    try {
      const server = new TmuxServer({ path: manifest.tmux.path }, options.tmux);
      const answering: string[] = [];
      for (const name of manifest.tmux.sessions) if (await server.hasSession(name)) answering.push(name);
      result.tmuxSessions = answering;
      const missing = manifest.tmux.sessions.filter((n) => !answering.includes(n));
      if (missing.length > 0) warnings.push(`tmux session${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not answer after the restore`);
    } catch (err) {
      warnings.push(`could not ask tmux about the restored sessions: ${(err as Error).message}`);
    }
  }
  return result;
}

/** Waits until no /dev/pts/N of `ptys` exists; resolves with those still there when the time is up. */
async function waitForPtysFree(ptys: readonly number[], timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = ptys.filter((n) => existsSync(`/dev/pts/${n}`));
    if (busy.length === 0 || Date.now() >= deadline || signal?.aborted) return busy;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A listening socket must be bindable where it was: its directory exists with the recorded owner and mode (tmux and
 * screen refuse a directory others can use; on another host it is often missing: CRIU then fails with "Can't bind
 * ... No such file or directory"), and nothing listens there. A stale socket file (connection refused) is removed.
 */
async function prepareListeningSocket(record: ListeningSocketRecord): Promise<void> {
  if (!existsSync(record.dir.path)) {
    mkdirSync(record.dir.path, { recursive: true, mode: record.dir.mode & 0o777 });
    chownSync(record.dir.path, record.dir.uid, record.dir.gid);
  }
  let isSocket = false;
  try {
    isSocket = lstatSync(record.path).isSocket();
  } catch {
    return; // nothing there: CRIU binds a new one
  }
  if (!isSocket) {
    throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `${record.path} exists and is not a socket; the tmux server cannot listen there`, {
      hint: 'Move that file away, then restore again.',
    });
  }
  const state = await probeSocket(record.path);
  if (state === 'listening') {
    throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `something already listens on ${record.path} (the checkpointed session still runs here?)`, {
      hint: `Stop it (a tmux server: \`tmux -S ${record.path} kill-server\`), or restore on another host.`,
    });
  }
  if (state === 'stale') unlinkSync(record.path);
}

/** 'stale' only when the kernel refuses the connection (nobody listens); anything unexpected is left to CRIU. */
function probeSocket(path: string): Promise<'listening' | 'stale' | 'unknown'> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve('listening');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'stale' : 'unknown'));
  });
}
