/**
 * Whether CRIU can read the rlimits of every task in a container. CRIU 4.2.1 reads each task's limits with
 * prlimit64(pid, res, NULL, &old); the kernel (check_prlimit_permission) allows that for a task of another user only
 * to a caller with CAP_SYS_RESOURCE over the task's user namespace. Root normally has it. Where root's bounding set
 * lacks it (some VMs and nested containers: the project's lab machine), the dump of every server that drops
 * privileges fails after the freeze with `Can't get rlimit 0: Operation not permitted`. ferry refuses such a container
 * in preflight instead, naming the task.
 *
 * FERRY_CRIU_READS_PROC_LIMITS=1 says the `criu` on PATH reads those limits another way (the lab-only preload in
 * e2e/apps/lab/criu-shim.js); nothing else should set it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { FerryError } from '../model/ferry-error';

const CAP_SYS_RESOURCE = 24n;

/** Whether a /proc/PID/status text's CapEff holds `bit`. */
export function hasCapability(status: string, bit: bigint = CAP_SYS_RESOURCE): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> bit) & 1n) === 1n;
}

/** The real, effective and saved uids and gids of a /proc/PID/status text. */
export function idsOf(status: string): { uids: number[]; gids: number[] } {
  const ids = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).slice(0, 3).map(Number);
  return { uids: ids('Uid'), gids: ids('Gid') };
}

/** Whether a caller with these ids may read the task's limits without CAP_SYS_RESOURCE (the kernel's rule). */
export function sameCredentials(caller: { uid: number; gid: number }, task: { uids: number[]; gids: number[] }): boolean {
  return task.uids.every((u) => u === caller.uid) && task.gids.every((g) => g === caller.gid);
}

/** The pids of the process tree under `pid` (itself first), from /proc/PID/task/TID/children. */
export function processTree(pid: number): number[] {
  const seen: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (seen.includes(p)) continue;
    seen.push(p);
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tids) {
      try {
        queue.push(...readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
      } catch {
        // a thread that ended
      }
    }
  }
  return seen;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * ERR_PRECHECK_CAPABILITY_MISSING when this process lacks CAP_SYS_RESOURCE and a task of the container under
 * `initPid` runs, in this process's user namespace, as another user: CRIU (which runs with this process's
 * capabilities) could not read its rlimits, and the dump would fail after the freeze.
 */
export function assertRlimitsReadable(initPid: number, id: string, env: NodeJS.ProcessEnv = process.env): void {
  const self = read('/proc/self/status') ?? '';
  if (hasCapability(self) || env.FERRY_CRIU_READS_PROC_LIMITS === '1') return;
  const caller = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const userns = statSync('/proc/self/ns/user').ino;
  for (const pid of processTree(initPid)) {
    const status = read(`/proc/${pid}/status`);
    if (status === undefined) continue;
    // A task in a user namespace this process created holds no ids of ours to compare; the kernel then checks the
    // namespace's owner, which is root here.
    let ns: number;
    try {
      ns = statSync(`/proc/${pid}/ns/user`).ino;
    } catch {
      continue;
    }
    const ids = idsOf(status);
    if (ns !== userns || sameCredentials(caller, ids)) continue;
    const comm = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '?';
    throw new FerryError(
      'ERR_PRECHECK_CAPABILITY_MISSING',
      `container ${id} cannot be checkpointed here: its process ${pid} (${comm}) runs as uid ${ids.uids.join('/')}, gid ${ids.gids.join('/')}, and CRIU can read another user's rlimits only with CAP_SYS_RESOURCE, which ferry's root lacks on this host`,
      {
        hint: "Run ferry as a root with CAP_SYS_RESOURCE (`grep CapBnd /proc/self/status`: bit 24; a VM or an outer container may drop it from the bounding set), or run the container's processes as root.",
        details: { id, pid, comm, uids: ids.uids, gids: ids.gids },
      },
    );
  }
}
