/**
 * `ferry session checkpoint`: dumps a terminal session (a tmux server, a shell job, a whole shell session, any
 * process tree) with CRIU into an image directory plus ferry-session.json.
 *
 * Contract: returning means the images and the manifest are complete; without leaveRunning the tree is gone (CRIU
 * killed it) and, unless `pidsStillInUse` says otherwise, its pids are free again. Throwing before the dump leaves
 * the tree untouched (attached tmux clients stay attached unless detachClients was given; detached ones stay
 * detached); a failed dump leaves it running (CRIU resumes it).
 */
import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { CriuClient } from '../criu/criu-client';
import { createCriuClient } from '../criu/create-criu-client';
import { createImageDir } from '../image/image-dir';
import { readPstree, readStats } from '../image/image-records';
import { imageDirBytes } from '../image/image-set';
import { FerryError } from '../model/ferry-error';
import { connectedUnixSockets, readProcessTree, readPtyUse, readTaskIds, readUnixSockets, waitForPidsFree } from './proc-tree';
import {
  SESSION_MANIFEST_VERSION,
  writeSessionManifest,
  type DirRecord,
  type ListeningSocketRecord,
  type SessionManifest,
  type TmuxSocketRecord,
} from './session-manifest';
import { planSessionDump, sessionDumpOptions, type SessionPlan } from './session-plan';
import { pickScreenSession, Screen } from './screen';
import { TmuxServer, type TmuxClient, type TmuxRun, type TmuxSocket } from './tmux';

/** What to checkpoint: a process tree by its root's pid, the tmux server holding a session, or a screen session. */
export type SessionTarget =
  | { kind: 'pid'; pid: number }
  | { kind: 'tmux'; session?: string; socket: TmuxSocket }
  | { kind: 'screen'; id: string };

/**
 * Parses `PID`, `tmux:SESSION`, `tmux` (the whole server) or `screen:NAME` (or `screen:PID.NAME`). `socket` names
 * the tmux server (-L / -S); tmux's default server when absent.
 */
export function parseSessionTarget(text: string, socket: TmuxSocket = {}): SessionTarget {
  if (/^\d+$/.test(text)) {
    const pid = Number(text);
    if (pid > 1) return { kind: 'pid', pid };
  }
  const tmux = /^tmux(?::(.*))?$/.exec(text);
  if (tmux) {
    const session = tmux[1];
    if (session !== undefined && session.length === 0) return { kind: 'tmux', socket };
    return session === undefined ? { kind: 'tmux', socket } : { kind: 'tmux', session, socket };
  }
  const screen = /^screen:(.+)$/.exec(text);
  if (screen?.[1]) return { kind: 'screen', id: screen[1] };
  throw new FerryError('ERR_PRECHECK_BAD_INPUT', `cannot checkpoint ${JSON.stringify(text)}: name a PID, tmux:SESSION or screen:NAME`, {
    hint: 'Examples: `ferry session checkpoint 4242`, `ferry session checkpoint tmux:work -L mysocket`, `ferry session checkpoint screen:work`.',
  });
}

export interface SessionCheckpointOptions {
  imagesDir: string;
  leaveRunning?: boolean;
  /** Detach the tmux clients attached to the server (the screen display) first; else an attached one is refused. */
  detachClients?: boolean;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  criu?: CriuClient;
  tmux?: { tmuxPath?: string; run?: TmuxRun };
  screen?: { screenPath?: string; run?: TmuxRun };
  signal?: AbortSignal;
  /** After a dump that ended the tree: how long to wait for its pids to be released (zombies reaped). */
  releaseTimeoutMs?: number;
}

export interface SessionCheckpointStats {
  frozenMs?: number;
  pagesWritten?: number;
  imageBytes: number;
  totalMs: number;
}

export interface SessionCheckpointResult {
  imagesDir: string;
  manifest: SessionManifest;
  plan: SessionPlan;
  logPath: string;
  stats: SessionCheckpointStats;
  detachedClients: TmuxClient[];
  /** Pids of the dumped tree still in use when the wait ended: a restore on this host fails until they are free. */
  pidsStillInUse: number[];
  warnings: string[];
}

const CLIENTS_GONE_TIMEOUT_MS = 5_000;
const CONNECTIONS_GONE_TIMEOUT_MS = 2_000;
const DEFAULT_RELEASE_TIMEOUT_MS = 5_000;

/** Checkpoints a session's process tree and its manifest into options.imagesDir; a failed dump leaves it running. */
export async function checkpointSession(target: SessionTarget, options: SessionCheckpointOptions): Promise<SessionCheckpointResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const imagesDir = options.imagesDir;
  if (existsSync(join(imagesDir, 'inventory.img'))) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${imagesDir} already holds a checkpoint`, { hint: 'Choose a new directory with --dir.' });
  }

  let pid: number;
  let tmuxRecord: TmuxSocketRecord | undefined;
  let screenRecord: { id: string } | undefined;
  let detachedClients: TmuxClient[] = [];
  if (target.kind === 'tmux') {
    const prepared = await prepareTmux(target, options, warnings);
    ({ pid, detachedClients } = prepared);
    tmuxRecord = prepared.record;
  } else if (target.kind === 'screen') {
    const prepared = await prepareScreen(target, options);
    ({ pid, detachedClients } = prepared);
    screenRecord = { id: prepared.id };
  } else {
    pid = target.pid;
    const ids = readTaskIds(pid);
    if (!ids || ids.state === 'Z') {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no running process ${pid}`, { hint: 'Check the pid with `ps -o pid,sid,tty,args -p PID`.' });
    }
  }

  const tasks = readProcessTree(pid);
  const taskPids = tasks.map((t) => t.pid);
  const ptyUse = readPtyUse(taskPids);
  const plan = planSessionDump(pid, tasks, ptyUse, target.kind === 'pid' ? undefined : target.kind);
  const ptys = [...new Set([...ptyUse.masters, ...(plan.terminal === 'new-pty' && plan.externalPty !== undefined ? [plan.externalPty] : [])])].sort((a, b) => a - b);
  const listeningSockets = recordListeningSockets(taskPids);

  createImageDir(imagesDir);
  const criu = options.criu ?? createCriuClient();
  const dumpOptions = sessionDumpOptions(plan, {
    pid,
    imagesDir,
    leaveRunning: options.leaveRunning,
    tcpEstablished: options.tcpEstablished,
    fileLocks: options.fileLocks,
  });
  const dump = await criu.dump(dumpOptions, { signal: options.signal });

  // From here the images exist and (without leaveRunning) the tree is gone: only warnings.
  const pstree = await readPstree(join(imagesDir, 'pstree.img'));
  const pids = [...new Set(pstree.flatMap((t) => [t.pid, ...t.threads]))].sort((a, b) => a - b);
  const ownPidNamespace = pstree[0]?.pid === 1;
  let pidsStillInUse: number[] = [];
  if (!options.leaveRunning && !ownPidNamespace) {
    pidsStillInUse = await waitForPidsFree(pids, options.releaseTimeoutMs ?? DEFAULT_RELEASE_TIMEOUT_MS);
    if (pidsStillInUse.length > 0) {
      warnings.push(`pids ${pidsStillInUse.join(', ')} are still in use; a restore on this host fails until they are released`);
    }
  }

  const manifest: SessionManifest = {
    version: SESSION_MANIFEST_VERSION,
    kind: plan.kind,
    rootPid: pid,
    pids,
    ownPidNamespace,
    shellJob: plan.shellJob,
    terminal: plan.terminal,
    ...(plan.externalPty === undefined ? {} : { externalPty: plan.externalPty }),
    ptys,
    tcpEstablished: dumpOptions.tcpEstablished ?? false,
    fileLocks: dumpOptions.fileLocks ?? false,
    leaveRunning: options.leaveRunning ?? false,
    ...(tmuxRecord ? { tmux: tmuxRecord } : {}),
    ...(screenRecord ? { screen: screenRecord } : {}),
    listeningSockets,
    hostname: hostname(),
    createdAt: new Date(started).toISOString(),
    reason: plan.reason,
  };
  writeSessionManifest(imagesDir, manifest);

  const stats: SessionCheckpointStats = { imageBytes: await imageDirBytes(imagesDir), totalMs: Date.now() - started };
  try {
    const dumpStats = (await readStats(join(imagesDir, 'stats-dump'))).dump;
    if (dumpStats) Object.assign(stats, { frozenMs: dumpStats.frozenMs, pagesWritten: dumpStats.pagesWritten });
  } catch {
    /* no stats-dump: the measured fields stay */
  }
  return { imagesDir, manifest, plan, logPath: dump.logPath, stats, detachedClients, pidsStillInUse, warnings };
}

async function prepareTmux(
  target: Extract<SessionTarget, { kind: 'tmux' }>,
  options: SessionCheckpointOptions,
  warnings: string[],
): Promise<{ pid: number; record: TmuxSocketRecord; detachedClients: TmuxClient[] }> {
  const server = new TmuxServer(target.socket, options.tmux);
  const info = await server.info(options.signal);
  const names = info.sessions.map((s) => s.name);
  if (target.session !== undefined && !names.includes(target.session)) {
    throw new FerryError('ERR_RUNTIME_NOT_FOUND', `${server.label} has no session ${JSON.stringify(target.session)} (it has: ${names.join(', ')})`, {
      hint: `List them with \`${server.label} ls\`.`,
    });
  }
  const others = names.filter((n) => n !== target.session);
  if (target.session !== undefined && others.length > 0) {
    warnings.push(`the tmux server also holds session${others.length > 1 ? 's' : ''} ${others.join(', ')}: a checkpoint takes the whole server`);
  }

  let clients = await server.clients(options.signal);
  const detachedClients: TmuxClient[] = [];
  if (clients.length > 0) {
    if (!options.detachClients) {
      throw new FerryError(
        'ERR_PRECHECK_UNSUPPORTED_CONFIG',
        `${clients.length} client${clients.length > 1 ? 's are' : ' is'} attached to ${server.label} (${clients.map((c) => c.name).join(', ')}); CRIU cannot dump a connection to a process outside the tree`,
        { hint: 'Detach first (prefix + d), or pass --detach-clients to detach them.', details: { clients } },
      );
    }
    for (const client of clients) {
      await server.detachClient(client.name, options.signal);
      detachedClients.push(client);
    }
    const deadline = Date.now() + CLIENTS_GONE_TIMEOUT_MS;
    while ((clients = await server.clients(options.signal)).length > 0) {
      if (Date.now() > deadline) {
        throw new FerryError('ERR_RUNTIME_FAILED', `tmux clients ${clients.map((c) => c.name).join(', ')} stay attached after detach-client`, {
          hint: 'Close those terminals, then checkpoint again.',
        });
      }
      await delay(50);
    }
  }
  // Every tmux command (ours included) is a client connection for a moment; let the server close them.
  const deadline = Date.now() + CONNECTIONS_GONE_TIMEOUT_MS;
  while (connectedUnixSockets(info.pid).length > 0 && Date.now() < deadline) await delay(20);

  return {
    pid: info.pid,
    detachedClients,
    record: { path: info.socketPath, dir: dirRecord(dirname(info.socketPath)), sessions: names },
  };
}

async function prepareScreen(
  target: Extract<SessionTarget, { kind: 'screen' }>,
  options: SessionCheckpointOptions,
): Promise<{ pid: number; id: string; detachedClients: TmuxClient[] }> {
  const screen = new Screen(options.screen);
  let session = pickScreenSession(await screen.list(options.signal), target.id);
  const id = `${session.pid}.${session.name}`;
  const detachedClients: TmuxClient[] = [];
  if (session.attached) {
    if (!options.detachClients) {
      throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `screen session ${id} is attached; its display is a terminal outside the session`, {
        hint: 'Detach first (C-a d), or pass --detach-clients to detach it.',
      });
    }
    await screen.detach(session, options.signal);
    detachedClients.push({ name: id, pid: session.pid, session: session.name });
    const deadline = Date.now() + CLIENTS_GONE_TIMEOUT_MS;
    while ((session = pickScreenSession(await screen.list(options.signal), id)).attached) {
      if (Date.now() > deadline) throw new FerryError('ERR_RUNTIME_FAILED', `screen session ${id} stays attached after screen -d`, { hint: 'Close that terminal, then checkpoint again.' });
      await delay(50);
    }
  }
  // screen -ls and -d talk to the server over its socket; let it close those connections.
  const deadline = Date.now() + CONNECTIONS_GONE_TIMEOUT_MS;
  while (connectedUnixSockets(session.pid).length > 0 && Date.now() < deadline) await delay(20);
  return { pid: session.pid, id, detachedClients };
}

/** The listening unix sockets with a path that the tree holds, with their directories as they are now. */
function recordListeningSockets(pids: readonly number[]): ListeningSocketRecord[] {
  const records: ListeningSocketRecord[] = [];
  for (const socket of readUnixSockets(pids)) {
    if (!socket.listening || socket.path === undefined) continue;
    try {
      records.push({ path: socket.path, dir: dirRecord(dirname(socket.path)) });
    } catch {
      /* its directory is gone (a deleted socket): CRIU restores it as a ghost, nothing to prepare */
    }
  }
  return records;
}

function dirRecord(path: string): DirRecord {
  const st = statSync(path);
  return { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

