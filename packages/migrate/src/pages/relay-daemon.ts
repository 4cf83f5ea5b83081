/**
 * The lazy-pages daemon as the destination relay sees it: started by this relay on a page socket (core), or taken
 * over from a relay that died (its page socket reclaimed from the daemon), and watched until it exits. How it ended
 * decides everything: finished (every page copied) or lost (pages missing: its tasks wait on ferry's copies of their
 * userfaultfds, and must be killed).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidfdOpen, type FdHandle } from '@ferry/core';
import { createPageSocketPair, processStartTime, readLogExcerpt, reclaimFerryEnd, startLazyPagesDaemon } from '@ferry/core';

export interface RelayDaemon {
  pid: number;
  startTime: string;
  /** ferry's end of the page socket (owned here; close() closes it). */
  socket: FdHandle;
  logPath: string;
  /** Resolves when the daemon has exited: `clean` when it exited 0 (or, for a daemon this relay did not start and so cannot reap, when its log shows no error). */
  exited: Promise<{ clean: boolean; how: string }>;
  kill(): void;
  close(): void;
}

export interface DaemonRecord {
  pid: number;
  startTime: string;
  logPath: string;
}

const RECORD = 'daemon.json';
const POLL_MS = 50;

export async function startRelayDaemon(options: { criuPath: string; imagesDir: string; workDir: string; recordDir: string }): Promise<RelayDaemon> {
  const pair = await createPageSocketPair();
  try {
    const child = await startLazyPagesDaemon({ criuPath: options.criuPath, imagesDir: options.imagesDir, workDir: options.workDir, pageServer: { socket: pair } });
    const startTime = processStartTime(child.pid) ?? '';
    const record: DaemonRecord = { pid: child.pid, startTime, logPath: child.logPath };
    writeFileSync(join(options.recordDir, RECORD), JSON.stringify(record), { mode: 0o600 });
    return {
      pid: child.pid,
      startTime,
      socket: pair.ferryEnd,
      logPath: child.logPath,
      exited: child.exited.then(({ code, signal }) => ({ clean: code === 0, how: signal ?? `exit ${code}` })),
      kill: () => child.kill(),
      close: () => pair.ferryEnd.close(),
    };
  } catch (error) {
    pair.ferryEnd.close();
    pair.criuEnd.close();
    throw error;
  }
}

export function readDaemonRecord(recordDir: string): DaemonRecord {
  return JSON.parse(readFileSync(join(recordDir, RECORD), 'utf8')) as DaemonRecord;
}

/** Takes over the daemon a dead relay started (its page socket back from the daemon's fd 4). */
export function adoptRelayDaemon(record: DaemonRecord): RelayDaemon {
  const socket = reclaimFerryEnd(record.pid, record.startTime);
  let pidfd: FdHandle | undefined;
  try {
    pidfd = pidfdOpen(record.pid);
  } catch {
    /* exited between the two calls: exited resolves at once */
  }
  const exited = (async () => {
    while (processStartTime(record.pid) === record.startTime && !isZombie(record.pid)) await new Promise((r) => setTimeout(r, POLL_MS));
    pidfd?.close();
    // Not our child: no exit code. CRIU logs an Error line for every failure it ends on.
    const excerpt = readLogExcerpt(record.logPath);
    const clean = excerpt !== undefined && excerpt.errorCount === 0;
    return { clean, how: clean ? 'exited, no error in its log' : `exited with errors in ${record.logPath}` };
  })();
  return {
    pid: record.pid,
    startTime: record.startTime,
    socket,
    logPath: record.logPath,
    exited,
    kill: () => {
      if (processStartTime(record.pid) === record.startTime) {
        try {
          process.kill(record.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
    close: () => socket.close(),
  };
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}
