/**
 * A process named so that a recycled pid cannot be mistaken for it: pid plus its start time (field 22 of
 * /proc/PID/stat, clock ticks since boot). Everything ferry journals as held is named this way, and nothing is
 * killed unless both still match.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessId {
  pid: number;
  startTime: number;
}

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  startTime: number;
}

/** Fields of /proc/PID/stat; the command name may hold spaces and parentheses, so fields count from its last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number.parseInt(text, 10);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const ppid = Number(fields[1]);
  const startTime = Number(fields[19]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isFinite(startTime)) return undefined;
  return { pid, ppid, state: fields[0] ?? '?', startTime };
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function processId(pid: number): ProcessId | undefined {
  const stat = readStat(pid);
  return stat ? { pid, startTime: stat.startTime } : undefined;
}

/** This process, as the journal names it. */
export function selfId(): ProcessId {
  return processId(process.pid) ?? { pid: process.pid, startTime: 0 };
}

/** Whether the very process `id` names still exists (a zombie counts as gone). */
export function isAlive(id: ProcessId): boolean {
  const stat = readStat(id.pid);
  return stat !== undefined && stat.startTime === id.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** The scheduler state letter of a task (R, S, D, t, T, Z...), undefined when it is gone. */
export function taskState(pid: number): string | undefined {
  return readStat(pid)?.state;
}

/** SIGKILL (or `signal`) to `id` if it is still that process; true when a signal was sent. */
export function killIfSame(id: ProcessId, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!isAlive(id)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) out.push(stat);
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * Processes whose command line contains `marker` (a path unique to one migration, e.g. its images directory), with
 * all their descendants: `runc checkpoint --image-path MARKER` and the criu it runs (criu renames itself, so it is
 * found as runc's child). Parents before children.
 */
export function processesMarked(marker: string): ProcessId[] {
  const stats = allStats();
  const found = new Map<number, ProcStat>();
  for (const s of stats) if (s.pid !== process.pid && cmdline(s.pid).includes(marker)) found.set(s.pid, s);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of stats) {
      if (!found.has(s.pid) && found.has(s.ppid)) {
        found.set(s.pid, s);
        grew = true;
      }
    }
  }
  return [...found.values()].map((s) => ({ pid: s.pid, startTime: s.startTime }));
}
