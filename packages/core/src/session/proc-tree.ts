/**
 * What /proc says about a process tree that matters for checkpointing a terminal session: every task's ids
 * (pid, parent, process group, session, controlling terminal) and which pseudo-terminals the tree holds, masters
 * and slaves. Reads only; a process that vanishes while being read is skipped.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface TaskIds {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Controlling terminal as the kernel encodes it in /proc/PID/stat (0: none). */
  ttyNr: number;
  /** The one-letter state from /proc/PID/stat ('Z' for a zombie). */
  state: string;
}

/** Pseudo-terminals open in a tree, by pty index (/dev/pts/N). */
export interface PtyUse {
  /** Indices of /dev/ptmx descriptors (masters), from /proc/PID/fdinfo's tty-index. */
  masters: number[];
  /** Indices of /dev/pts/N descriptors (slaves). */
  slaves: number[];
}

/** Major device number of Unix98 pty slaves (/dev/pts/N). */
export const PTY_SLAVE_MAJOR = 136;
const PTY_SLAVE_MAJOR_COUNT = 8; // majors 136..143

/** Parses /proc/PID/stat; undefined when the text is not one (comm may hold spaces and parentheses). */
export function parseProcStat(text: string): TaskIds | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  const [state, ppid, pgid, sid, ttyNr] = [rest[0], Number(rest[1]), Number(rest[2]), Number(rest[3]), Number(rest[4])];
  if (!state || [pid, ppid, pgid, sid, ttyNr].some((n) => !Number.isInteger(n))) return undefined;
  return { pid, ppid, pgid, sid, ttyNr, state };
}

/** The pty index of a controlling terminal number from /proc/PID/stat, or undefined when it is not a pty slave. */
export function ptyIndexOfTtyNr(ttyNr: number): number | undefined {
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major < PTY_SLAVE_MAJOR || major >= PTY_SLAVE_MAJOR + PTY_SLAVE_MAJOR_COUNT) return undefined;
  return (major - PTY_SLAVE_MAJOR) * 256 + minor;
}

export function readTaskIds(pid: number): TaskIds | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The root and all its descendants (children of every thread), root first; [] when the root does not exist. */
export function readProcessTree(rootPid: number): TaskIds[] {
  const tasks: TaskIds[] = [];
  const queue = [rootPid];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const ids = readTaskIds(pid);
    if (!ids) continue;
    tasks.push(ids);
    for (const tid of listDir(`/proc/${pid}/task`)) {
      try {
        const children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (children) queue.push(...children.split(/\s+/).map(Number));
      } catch {
        /* the thread exited */
      }
    }
  }
  return tasks;
}

/** Which pseudo-terminals the given processes hold open. */
export function readPtyUse(pids: readonly number[]): PtyUse {
  const masters = new Set<number>();
  const slaves = new Set<number>();
  for (const pid of pids) {
    for (const fd of listDir(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const slave = /^\/dev\/pts\/(\d+)$/.exec(target);
      if (slave) {
        slaves.add(Number(slave[1]));
      } else if (target === '/dev/ptmx' || target === '/dev/pts/ptmx') {
        try {
          const index = /^tty-index:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
          if (index !== undefined) masters.add(Number(index));
        } catch {
          /* closed meanwhile */
        }
      }
    }
  }
  return { masters: [...masters].sort((a, b) => a - b), slaves: [...slaves].sort((a, b) => a - b) };
}

/**
 * The numbers among `pids` that this PID namespace still uses, as a task (or thread) id or as the process group or
 * session of a live task, zombies included: CRIU cannot give such a number to a restored task ("Can't fork for N:
 * File exists").
 */
export function pidsInUse(pids: readonly number[]): number[] {
  const wanted = new Set(pids);
  const used = new Set<number>();
  for (const pid of wanted) if (existsSync(`/proc/${pid}`)) used.add(pid);
  for (const entry of listDir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ids = readTaskIds(Number(entry));
    if (!ids) continue;
    if (wanted.has(ids.pgid)) used.add(ids.pgid);
    if (wanted.has(ids.sid)) used.add(ids.sid);
  }
  return [...used].sort((a, b) => a - b);
}

/** Waits until none of `pids` is in use (see pidsInUse); resolves with those still used when the time is up. */
export async function waitForPidsFree(pids: readonly number[], timeoutMs: number, signal?: AbortSignal): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const used = pidsInUse(pids);
    if (used.length === 0 || Date.now() >= deadline || signal?.aborted) return used;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface UnixSocketEntry {
  inode: number;
  /** Listening (__SO_ACCEPTCON in the flags). */
  listening: boolean;
  /** 1 stream, 2 datagram, 5 seqpacket. */
  type: number;
  /** The bound path; undefined for unbound and abstract (@...) sockets. */
  path?: string;
}

/** Parses /proc/net/unix (Num RefCount Protocol Flags Type St Inode [Path]). */
export function parseProcNetUnix(text: string): UnixSocketEntry[] {
  const entries: UnixSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 7) continue;
    const path = cols.slice(7).join(' ');
    entries.push({
      inode: Number(cols[6]),
      listening: (parseInt(cols[3] ?? '0', 16) & 0x10000) !== 0,
      type: parseInt(cols[4] ?? '0', 16),
      ...(path.startsWith('/') ? { path } : {}),
    });
  }
  return entries;
}

/** The unix sockets the given processes hold, as /proc/net/unix of the first of them describes them. */
export function readUnixSockets(pids: readonly number[]): UnixSocketEntry[] {
  const inodes = new Set<number>();
  for (const pid of pids) {
    for (const fd of listDir(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
  }
  const first = pids[0];
  if (inodes.size === 0 || first === undefined) return [];
  try {
    return parseProcNetUnix(readFileSync(`/proc/${first}/net/unix`, 'utf8')).filter((e) => inodes.has(e.inode));
  } catch {
    return [];
  }
}

/** Inodes of the unix sockets a process holds that are not listening (its connections). */
export function connectedUnixSockets(pid: number): number[] {
  return readUnixSockets([pid])
    .filter((e) => !e.listening)
    .map((e) => e.inode)
    .sort((a, b) => a - b);
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
