/**
 * The source side of a lazy dump under ferry's hold (docs/design/crash-safety.md section 4).
 *
 * Once CRIU reports the lazy dump ready (its images written, its tasks seized), ferry freezes the container's cgroup
 * as well: its own hold. Measured on this kernel (6.18, cgroup v1 freezer): the freeze completes while CRIU holds the
 * tasks (they are counted frozen in ptrace stop), and when CRIU is killed -9 they stay frozen (TracerPid 0, state D)
 * until ferry thaws them, memory intact. So neither CRIU's death nor ferry's loses the source.
 *
 * The end, after the destination has every page: a clean close of CRIU's page server (connected from inside the
 * dump's private network namespace, the only place it can be reached) makes CRIU finish: it sends SIGKILL to the
 * tasks and waits for them. Frozen tasks do not die (v1), so ferry thaws once every task has the SIGKILL pending: a
 * task with SIGKILL pending never returns to user space, so nothing runs. Rollback instead: kill CRIU, then thaw.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectSocket, pidfdOpen, pidfdSendSignal, socketInNetns, StreamSocket, type FdHandle } from '@ferry/core';
import { Freezer, FerryError } from '@ferry/core';

const SIGKILL_BIT = 1n << 8n;
const POLL_MS = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Freezes the container's cgroup (ferry's own hold). Call once CRIU has reported the lazy dump ready. */
export async function holdFrozen(freezerPath: string, timeoutMs = 10_000): Promise<Freezer> {
  const freezer = Freezer.at(freezerPath);
  await freezer.freeze({ timeoutMs });
  return freezer;
}

/** Processes in the cgroup now. */
export function cgroupPids(freezerPath: string): number[] {
  try {
    return readFileSync(join(freezerPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killPending(pid: number): boolean | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // gone
  }
  const mask = (name: string) => BigInt(`0x${/^(\w+):\s*([0-9a-f]+)$/m.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? '0'}`);
  return ((mask('SigPnd') | mask('ShdPnd')) & SIGKILL_BIT) !== 0n;
}

export interface FinishLazyDumpOptions {
  /** The dump's private network namespace (CRIU's page server listens in there). */
  netns: FdHandle;
  /** CRIU's page-server port in that namespace. */
  port: number;
  freezerPath: string;
  /** How long CRIU may take to kill the tasks once told. Default 30 s. */
  timeoutMs?: number;
}

/**
 * Tells CRIU that every page has been served (a clean close from inside its namespace), waits until every task of
 * the cgroup has SIGKILL pending, and thaws: the tasks die without running again. Resolves once the cgroup is empty.
 * On timeout the tasks stay frozen (safe) and it throws ERR_CRIU_DUMP_FAILED.
 */
export async function finishLazyDump(options: FinishLazyDumpOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) =>
    new FerryError('ERR_CRIU_DUMP_FAILED', `ending the source's lazy dump: ${why}`, {
      hint: `The source tasks stay frozen in ${options.freezerPath}; kill them, then thaw the cgroup.`,
    });
  const socket = await socketInNetns(options.netns, { family: 'inet', type: 'stream' });
  try {
    await connectSocket(socket, 'inet', '127.0.0.1', options.port, 10_000);
  } catch (cause) {
    socket.close();
    throw fail(`cannot reach CRIU's page server (port ${options.port} in the dump's namespace): ${(cause as Error).message}`);
  }
  // A clean close with nothing sent: CRIU's page server reads it as "every page served".
  const s = StreamSocket.adopt(socket);
  s.close();
  for (;;) {
    const pids = cgroupPids(options.freezerPath);
    const states = pids.map(killPending);
    if (states.every((pending) => pending !== false)) break;
    if (Date.now() > deadline) throw fail(`CRIU did not kill the source tasks within ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
  Freezer.at(options.freezerPath).thaw();
  while (cgroupPids(options.freezerPath).length > 0) {
    if (Date.now() > deadline) throw fail('the source tasks did not exit after the thaw');
    await sleep(POLL_MS);
  }
}

/** Process states that mean "stopped": a thawed container with such a task is not running. */
function stoppedTasks(freezerPath: string): number[] {
  return cgroupPids(freezerPath).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return /^[tT]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '');
    } catch {
      return false;
    }
  });
}

export interface ReleaseLazyDumpOptions {
  freezerPath: string;
  /** The process holding the tasks (criu, or the runtime's checkpoint command): killed first. */
  dumpPid?: number;
  timeoutMs?: number;
}

/**
 * Rollback: kills the dump (its tasks stay frozen under ferry's hold), then thaws and checks that the tasks run
 * (freezer thawed and no task in t/T state). Throws ERR_ROLLBACK_FAILED when they do not.
 */
export async function releaseLazyDump(options: ReleaseLazyDumpOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  if (options.dumpPid !== undefined) {
    let pidfd: FdHandle | undefined;
    try {
      pidfd = pidfdOpen(options.dumpPid);
      pidfdSendSignal(pidfd, 'SIGKILL');
      while (existsProcess(options.dumpPid)) {
        if (Date.now() > deadline) break;
        await sleep(POLL_MS);
      }
    } catch {
      /* gone already */
    } finally {
      pidfd?.close();
    }
  }
  const freezer = Freezer.at(options.freezerPath);
  for (;;) {
    freezer.thaw();
    if (freezer.state() === 'thawed' && stoppedTasks(options.freezerPath).length === 0) return;
    if (Date.now() > deadline) {
      throw new FerryError('ERR_ROLLBACK_FAILED', `the source tasks in ${options.freezerPath} do not run again after the thaw (stopped: ${stoppedTasks(options.freezerPath).join(', ') || 'none'})`, {
        hint: 'A process that still traces them (a CRIU dump) must be killed first.',
      });
    }
    await sleep(POLL_MS);
  }
}

function existsProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
