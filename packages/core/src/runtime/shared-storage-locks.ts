/**
 * File locks a container holds on storage both hosts share. A move holds the source frozen, still alive, until the
 * destination runs; with `--shared-storage` the destination restores from the very same files, and CRIU re-takes
 * each lock there with a waiting F_SETLKW on the same inode, which the frozen source still holds. The restore hangs
 * until its deadline (found moving beanstalkd under supervisor: its binlog directory's `lock` file). Such a move is
 * refused before the freeze; with the bundle copied, the destination's locks are on its own copy and do not wait.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerInfo } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { processTree } from './rlimit-access';

export interface HeldLock {
  kind: string;
  pid: number;
  /** maj:min (hex, as /proc/locks prints them) and inode. */
  dev: string;
  inode: number;
}

/** The granted locks of a /proc/locks text (waiters, the `->` lines, are left out). */
export function parseProcLocks(text: string): HeldLock[] {
  const locks: HeldLock[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\w+)\s+\w+\s+\w+\s+(-?\d+)\s+([0-9a-f]+:[0-9a-f]+):(\d+)\s/.exec(line);
    if (m) locks.push({ kind: m[1]!, pid: Number(m[2]), dev: m[3]!, inode: Number(m[4]) });
  }
  return locks;
}

/** A stat dev number as /proc/locks prints it: hex major:minor, at least two digits each (the kernel's new_encode_dev). */
export function devLabel(dev: number): string {
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

/** The path by which process `pid` holds inode `inode` open, when one of its fds shows it. */
function pathOf(pid: number, inode: number): string | undefined {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const path = join(`/proc/${pid}/fd`, fd);
      try {
        if (statSync(path).ino === inode) return readlinkSync(path);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone
  }
  return undefined;
}

/**
 * ERR_PRECHECK_UNSUPPORTED_CONFIG when a task of the container holds a file lock on the filesystem of its root
 * (the storage a `--shared-storage` move leaves in place for the destination).
 */
export function assertNoSharedStorageLocks(container: ContainerInfo, locksText?: string): void {
  const rootfs = container.rootfs ?? (container.bundle ? join(container.bundle, 'rootfs') : undefined);
  if (container.pid === undefined || rootfs === undefined) return;
  const dev = devLabel(statSync(rootfs).dev);
  const tasks = new Set(processTree(container.pid));
  const held = parseProcLocks(locksText ?? readFileSync('/proc/locks', 'utf8')).find((l) => l.dev === dev && tasks.has(l.pid));
  if (!held) return;
  const { id } = container.ref;
  const file = pathOf(held.pid, held.inode) ?? `inode ${held.inode}`;
  throw new FerryError(
    'ERR_PRECHECK_UNSUPPORTED_CONFIG',
    `container ${id} cannot be moved with --shared-storage: its process ${held.pid} holds a ${held.kind} lock on ${file}, on the storage the destination restores from, and the frozen source keeps holding it while the destination's restore waits for it`,
    {
      hint: 'Move it without --shared-storage: ferry then copies the bundle, and the destination takes the lock on its own copy.',
      details: { id, pid: held.pid, kind: held.kind, file, dev: held.dev, inode: held.inode },
    },
  );
}
