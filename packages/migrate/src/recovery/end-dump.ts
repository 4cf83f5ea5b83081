/**
 * Ends what a dump left holding a container: its processes (runc/lxc-checkpoint and the criu they ran, journaled
 * with start times, or found by the dump's marker), then, in this order, the TCP repair mode of its sockets and
 * CRIU's network lock in its netns (core's network-lock.ts: lifting the lock first lets traffic reach sockets still in
 * repair mode, and the connections die). Used by the rollback of a live move (the adapter stops a killed dump's
 * runtime tool, but not CRIU's leftovers; a failed lazy dump leaves them too) and by recovery.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, removeCriuNetworkLock, takeSocketsOutOfRepair } from '@ferry/core';
import type { HoldRecord } from '../journal/journal';
import { isAlive, killIfSame, processesMarked, type ProcessId } from '../journal/proc-identity';

const EXIT_WAIT_MS = 10_000;
const DUMP_SETTLE_MS = 30_000;
const LAZY_SETTLE_MS = 5_000;

export async function endDump(hold: HoldRecord, container: { pid?: number; freezerPath?: string }): Promise<void> {
  const found = new Map<number, ProcessId>();
  for (const p of [...(hold.pids ?? []), ...(hold.marker ? processesMarked(hold.marker) : [])]) found.set(p.pid, p);
  const processes = [...found.values()];
  // A dump whose owner died may still be inside the tasks (injected syscalls, the parasite), where killing CRIU can
  // kill a task (core's dump-abort.ts): it gets time to end by itself. A lazy dump journals its pids once ready, when
  // its parasite is gone; one not ready yet would wait for a page client forever, so its wait is short.
  if (!hold.pids) await waitGone(processes, hold.port === undefined ? DUMP_SETTLE_MS : LAZY_SETTLE_MS);
  // CRIU holds the tasks while it lives (ptrace): children (criu) before parents (runc).
  for (const p of [...processes].reverse()) killIfSame(p);
  if (!(await waitGone(processes))) {
    throw new FerryError('ERR_ROLLBACK_FAILED', `the dump processes ${processes.map((p) => p.pid).join(', ')} do not exit`, { hint: 'Check them with `ps` and kill them by hand.' });
  }
  const initPid = container.pid ?? hold.initPid;
  takeSocketsOutOfRepair(tasksOf(container.freezerPath, initPid));
  if (initPid) await removeCriuNetworkLock(`/proc/${initPid}/ns/net`);
}

/** The container's processes (its cgroup), or its init alone when the cgroup cannot be read. */
function tasksOf(freezerPath: string | undefined, initPid: number | undefined): number[] {
  if (freezerPath) {
    try {
      return readFileSync(join(freezerPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      /* gone */
    }
  }
  return initPid ? [initPid] : [];
}

export async function waitGone(processes: readonly ProcessId[], timeoutMs = EXIT_WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processes.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
