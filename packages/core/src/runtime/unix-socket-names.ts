/**
 * Listening unix sockets whose bound name is gone. A server may bind its socket under a temporary name, hard-link it
 * to the real one and unlink the temporary name (supervisord: bound as /var/run/supervisor.sock.PID, linked to
 * /var/run/supervisor.sock). The kernel keeps the bound name; CRIU resolves that name at dump, finds it unlinked
 * ("unix: Dropping path ... for unlinked sk") and restores the socket without a file: the server listens on, but no
 * path reaches it after the restore, because the other link named the old socket's inode, which does not travel.
 * ferry cannot re-create the link (a restored socket has no file to link to), so it warns, naming the socket.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { processTree } from './rlimit-access';

export interface UnixSocketEntry {
  inode: number;
  listening: boolean;
  /** The bound name ('@...' for an abstract one); undefined when unbound. */
  path?: string;
}

export interface UnnamedListener {
  pid: number;
  comm: string;
  /** The name the socket was bound to, which no longer names it. */
  name: string;
}

const SO_ACCEPTCON = 0x10000;

/** The sockets of a /proc/PID/net/unix text. */
export function parseProcNetUnix(text: string): UnixSocketEntry[] {
  const entries: UnixSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]; the path may hold spaces.
    const m = /^\s*[0-9a-f]+:\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+(\d+)(?: (.*))?$/i.exec(line);
    if (!m) continue;
    const path = m[3];
    entries.push({ inode: Number(m[2]), listening: (parseInt(m[1]!, 16) & SO_ACCEPTCON) !== 0, ...(path ? { path } : {}) });
  }
  return entries;
}

/** Where `path` leads inside the root `root` (a /proc/PID/root), following its symlinks inside that root; undefined when it leads nowhere. */
export function lstatInRoot(root: string, path: string): ReturnType<typeof lstatSync> | undefined {
  let rest = posix.normalize(path).split('/').filter(Boolean);
  let at: string[] = [];
  for (let hops = 0; rest.length > 0; ) {
    const part = rest.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      at.pop();
      continue;
    }
    const here = `${root}/${[...at, part].join('/')}`;
    let st;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(here);
      // An absolute link starts again at the container's root, not the host's.
      if (target.startsWith('/')) at = [];
      rest = [...target.split('/').filter(Boolean), ...rest];
      continue;
    }
    if (rest.length === 0) return st;
    at.push(part);
  }
  return lstatSync(root);
}

/** The listening unix sockets that tasks of the tree at `pid` hold and whose bound path no socket file answers to. */
export function unnamedUnixListeners(pid: number): UnnamedListener[] {
  let table: string;
  try {
    table = readFileSync(`/proc/${pid}/net/unix`, 'utf8');
  } catch {
    return [];
  }
  const bound = new Map(parseProcNetUnix(table).filter((s) => s.listening && s.path?.startsWith('/')).map((s) => [s.inode, s.path!]));
  if (bound.size === 0) return [];
  const found: UnnamedListener[] = [];
  const seen = new Set<number>();
  for (const task of processTree(pid)) {
    for (const inode of socketInodes(task)) {
      const name = bound.get(inode);
      if (name === undefined || seen.has(inode)) continue;
      seen.add(inode);
      if (lstatInRoot(`/proc/${pid}/root`, name)?.isSocket()) continue;
      found.push({ pid: task, comm: commOf(task), name });
    }
  }
  return found;
}

/** The warnings for a container's unnamed listeners (none when it does not run, or its /proc cannot be read). */
export function unnamedListenerWarnings(container: { ref: { id: string }; pid?: number }): string[] {
  if (container.pid === undefined) return [];
  try {
    return unnamedUnixListeners(container.pid).map((l) => unnamedListenerWarning(container.ref.id, l));
  } catch {
    return []; // a task that ended while it was read: no warning rather than a failed move
  }
}

/** The warning for one such socket, naming the container, the process and the name. */
export function unnamedListenerWarning(container: string, l: UnnamedListener): string {
  return (
    `container ${container}: process ${l.pid} (${l.comm}) listens on a unix socket bound as ${l.name}, a name since unlinked ` +
    '(reached through another link, e.g. a control socket renamed after bind): CRIU restores it without a file, so clients that connect by path cannot reach it after the move'
  );
}

function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.push(Number(m[1]));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone
  }
  return inodes;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
