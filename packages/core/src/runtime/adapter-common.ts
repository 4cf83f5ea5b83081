/** Small pieces every runtime adapter needs in the same form. */
import { assertRlimitsReadable } from './rlimit-access';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseCgroupLayout, type CgroupInfo } from '../host/cgroup-layout';
import { privateImageFiles } from '../image/image-dir';
import { imageDirBytes } from '../image/image-set';
import { readStats } from '../image/image-records';
import type { CheckpointStats, ContainerInfo, ContainerRef, RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { netnsInode } from './network-fence';
import { freezerPathOf } from './runc-state';

/** What a checkpoint cost: CRIU's own dump stats (when it wrote them to the work dir) and the images' size. */
export async function checkpointStats(imagesDir: string, workDir: string, totalMs: number): Promise<CheckpointStats> {
  privateImageFiles(imagesDir); // every dump ends here; CRIU wrote its images 0644
  const stats: CheckpointStats = { imageBytes: await imageDirBytes(imagesDir), totalMs };
  try {
    const dump = (await readStats(join(workDir, 'stats-dump'))).dump;
    if (dump) {
      stats.frozenMs = dump.frozenMs;
      stats.memdumpMs = dump.memdumpMs;
      stats.memwriteMs = dump.memwriteMs;
      stats.pagesWritten = dump.pagesWritten;
      stats.pagesSkippedParent = dump.pagesSkippedParent;
    }
  } catch {
    /* no stats-dump (old CRIU, pre-dump without stats): the measured fields stay */
  }
  return stats;
}

/** ERR_ABORTED when `signal` has fired: nothing was started yet. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new FerryError('ERR_ABORTED', `${what} interrupted`, { hint: 'Run the command again when ready.' });
}

/** A restore's first check: ERR_IMAGE_NOT_FOUND unless `imagesDir` holds CRIU images. */
export function assertImagesDir(imagesDir: string): void {
  if (!existsSync(join(imagesDir, 'inventory.img'))) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} holds no CRIU images (no inventory.img)`, {
      hint: 'Pass the directory a checkpoint wrote.',
      details: { imagesDir },
    });
  }
}

/** The container as a dump that ended it leaves it: stopped, no pid, no freezer. */
export function stoppedAfterDump(before: ContainerInfo): ContainerInfo {
  const { pid: _pid, freezerPath: _freezer, ...rest } = before;
  return { ...rest, state: 'stopped' };
}

/**
 * A container name checker for one runtime: ERR_PRECHECK_BAD_INPUT for a ref of another runtime or a name that does
 * not match `pattern` (every pattern refuses a leading '-', so a name can never read as a flag).
 */
export function nameRule(runtime: RuntimeName, label: string, pattern: RegExp, hint: string): { ref(ref: ContainerRef): void; name(name: string): void } {
  const name = (id: string) => {
    if (!pattern.test(id)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${id}" is not a valid ${label} container name`, { hint });
  };
  return {
    ref(ref) {
      if (ref.runtime !== runtime) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the ${label} adapter was asked about a ${ref.runtime} container (${ref.id})`);
      name(ref.id);
    },
    name,
  };
}

/** ERR_RUNTIME_NOT_RUNNING unless the container is running or paused (frozen): only those can be checkpointed. */
export function assertCheckpointable(container: ContainerInfo, label: string, startCommand: string): void {
  const { id } = container.ref;
  if (container.state === 'running' || container.state === 'paused') {
    if (container.pid !== undefined) assertRlimitsReadable(container.pid, id);
    return;
  }
  throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `${label} container ${id} is ${container.state}`, {
    hint: `Start it first (\`${startCommand}\`); only running or paused containers can be checkpointed.`,
    details: { id, state: container.state },
  });
}

/** `path` when it names a network namespace (the dump tool will run inside it); ERR_PRECHECK_BAD_INPUT otherwise. */
export function checkedNetnsPath(path: string): string {
  if (!isAbsolute(path) || netnsInode(path) === undefined) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${path} is not a network namespace`, {
      hint: 'Pass the path of a network namespace (/run/netns/NAME or /proc/PID/ns/net).',
    });
  }
  return path;
}

let cgroupInfo: CgroupInfo | undefined;

/** The freezer cgroup directory of process `pid`; undefined when it is gone or the host has no freezer. */
export function freezerPathOfPid(pid: number): string | undefined {
  try {
    return freezerPathOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), hostCgroups());
  } catch {
    return undefined;
  }
}

/** The cgroup layout of this host (read once). */
export function hostCgroups(): CgroupInfo {
  cgroupInfo ??= parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
  return cgroupInfo;
}

/**
 * Undo steps scoped to one operation (Incus's revert): add() each undo before its side effect, success() once the
 * operation holds, fail() on error runs the steps newest first. An undo that fails is passed over: the operation's
 * own error is what the caller needs.
 */
export class Reverter {
  private steps: (() => Promise<void> | void)[] = [];

  add(undo: () => Promise<void> | void): void {
    this.steps.push(undo);
  }

  success(): void {
    this.steps = [];
  }

  async fail(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    for (const step of steps) {
      try {
        await step();
      } catch {
        /* best effort */
      }
    }
  }
}
