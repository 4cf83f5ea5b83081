/**
 * ferry-session.json: what `ferry session checkpoint` knew besides CRIU's images and what a restore needs to
 * prepare the host (the tmux socket's directory) and to call CRIU the same way (shell job, terminal, TCP, locks).
 * Written last, so an image directory without it is not a finished session checkpoint.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import type { SessionKind, TerminalMode } from './session-plan';

export const SESSION_MANIFEST_FILE = 'ferry-session.json';
export const SESSION_MANIFEST_VERSION = 1;

export interface DirRecord {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * A unix socket the tree listens on. CRIU binds it again at restore, which needs its directory: tmux and screen
 * refuse a socket directory others can use, so a restore recreates a missing one with the recorded owner and mode.
 */
export interface ListeningSocketRecord {
  path: string;
  dir: DirRecord;
}

export interface TmuxSocketRecord {
  /** The server's socket (tmux's #{socket_path}). */
  path: string;
  /** The directory holding it, as it was. */
  dir: DirRecord;
  sessions: string[];
}

export interface SessionManifest {
  version: typeof SESSION_MANIFEST_VERSION;
  kind: SessionKind;
  /** The dumped tree's root as it was (a restore without a PID namespace gives it the same pid). */
  rootPid: number;
  /** Every task and thread id of the tree (from pstree.img): they must be free where it is restored. */
  pids: number[];
  /** Whether the tree was the init of its own PID namespace (then its pids cannot collide). */
  ownPidNamespace: boolean;
  shellJob: boolean;
  terminal: TerminalMode;
  externalPty?: number;
  /**
   * Indices of the ptys CRIU recreates on restore (/dev/pts/N): the masters held in the tree and, for a 'new-pty'
   * session, its terminal. CRIU cannot renumber a pty, so each must be free where the session is restored.
   */
  ptys: number[];
  tcpEstablished: boolean;
  fileLocks: boolean;
  leaveRunning: boolean;
  tmux?: TmuxSocketRecord;
  /** The screen session, as screen -r names it (PID.NAME). */
  screen?: { id: string };
  /** Every listening unix socket with a path in the tree (the tmux or screen server's among them). */
  listeningSockets: ListeningSocketRecord[];
  hostname: string;
  createdAt: string;
  /** Why the plan chose this kind (SessionPlan.reason). */
  reason: string;
}

/** Writes ferry-session.json (0600) atomically into `dir`; returns its path. */
export function writeSessionManifest(dir: string, manifest: SessionManifest): string {
  const path = join(dir, SESSION_MANIFEST_FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

/** The validated ferry-session.json of `dir`; ERR_IMAGE_NOT_FOUND or ERR_IMAGE_CORRUPT otherwise. */
export function readSessionManifest(dir: string): SessionManifest {
  const path = join(dir, SESSION_MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${dir} holds no session checkpoint (no ${SESSION_MANIFEST_FILE})`, {
      hint: 'Give a directory written by `ferry session checkpoint` (container images restore with `ferry restore`).',
      cause: err,
      details: { path },
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw corrupt(path, `not JSON: ${(err as Error).message}`);
  }
  return validateSessionManifest(value, path);
}

const KINDS: readonly SessionKind[] = ['tmux', 'screen', 'shell-job', 'shell-session', 'process-tree'];
const TERMINALS: readonly TerminalMode[] = ['none', 'caller', 'new-pty'];

/** Checks the shape of a parsed manifest; throws ERR_IMAGE_CORRUPT naming the first bad field. */
export function validateSessionManifest(value: unknown, path = SESSION_MANIFEST_FILE): SessionManifest {
  if (!isRecord(value)) throw corrupt(path, 'not an object');
  const m = value;
  if (m.version !== SESSION_MANIFEST_VERSION) throw corrupt(path, `version ${String(m.version)} (this ferry reads ${SESSION_MANIFEST_VERSION})`);
  if (!KINDS.includes(m.kind as SessionKind)) throw corrupt(path, `unknown kind ${String(m.kind)}`);
  if (!TERMINALS.includes(m.terminal as TerminalMode)) throw corrupt(path, `unknown terminal ${String(m.terminal)}`);
  if (!isPid(m.rootPid)) throw corrupt(path, 'rootPid');
  if (!Array.isArray(m.pids) || !m.pids.every(isPid)) throw corrupt(path, 'pids');
  if (!Array.isArray(m.ptys) || !m.ptys.every((n) => Number.isInteger(n) && (n as number) >= 0)) throw corrupt(path, 'ptys');
  for (const key of ['ownPidNamespace', 'shellJob', 'tcpEstablished', 'fileLocks', 'leaveRunning'] as const) {
    if (typeof m[key] !== 'boolean') throw corrupt(path, key);
  }
  if (m.externalPty !== undefined && !(Number.isInteger(m.externalPty) && (m.externalPty as number) >= 0)) throw corrupt(path, 'externalPty');
  for (const key of ['hostname', 'createdAt', 'reason'] as const) {
    if (typeof m[key] !== 'string') throw corrupt(path, key);
  }
  if (m.kind === 'tmux' || m.tmux !== undefined) {
    const t = m.tmux;
    if (!isRecord(t) || !isAbsolute(t.path)) throw corrupt(path, 'tmux.path');
    if (!isDirRecord(t.dir)) throw corrupt(path, 'tmux.dir');
    if (!Array.isArray(t.sessions) || !t.sessions.every((s) => typeof s === 'string')) throw corrupt(path, 'tmux.sessions');
  }
  if (m.kind === 'screen' || m.screen !== undefined) {
    if (!isRecord(m.screen) || typeof m.screen.id !== 'string') throw corrupt(path, 'screen.id');
  }
  if (!Array.isArray(m.listeningSockets) || !m.listeningSockets.every((s) => isRecord(s) && isAbsolute(s.path) && isDirRecord(s.dir))) {
    throw corrupt(path, 'listeningSockets');
  }
  return value as unknown as SessionManifest;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAbsolute(value: unknown): boolean {
  return typeof value === 'string' && value.startsWith('/');
}

function isDirRecord(value: unknown): boolean {
  return isRecord(value) && isAbsolute(value.path) && [value.mode, value.uid, value.gid].every((n) => Number.isInteger(n));
}

function isPid(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0;
}

function corrupt(path: string, what: string): FerryError {
  return new FerryError('ERR_IMAGE_CORRUPT', `${path} is not a valid session manifest: ${what}`, {
    hint: 'Checkpoint the session again with this version of ferry.',
    details: { path },
  });
}
