/**
 * What a container's init holds on fds 0-2, and whether CRIU can dump it. A path alone cannot tell a host file from
 * the container's own: readlink of /proc/PID/fd/N prints a file inside the container's rootfs by its path in the
 * container (nginx's /var/log/nginx/error.log), exactly like a host file of that name. The mount does tell: CRIU
 * dumps an fd whose mount (fdinfo's mnt_id) is one of the container's mounts, and fails with "Can't lookup mount=N"
 * for any other. So a path on one of the container's mounts is the container's file and is fine; a path on a mount
 * the container does not have is a host file runc passed in, and is refused.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { stdioProblem } from './runc-state';

export interface StdioTarget {
  /** readlink of /proc/PID/fd/N; undefined when the fd is closed. */
  link: string | undefined;
  /** The fd's mount id (fdinfo's mnt_id); undefined when unknown. */
  mntId: number | undefined;
}

const TERMINAL = /^\/dev\/(pts\/\d+|tty\w*|console)$/;

/** The mount ids of a process's mount namespace, from its /proc/PID/mountinfo text (first field of each line). */
export function mountIdsOf(mountinfo: string): Set<number> {
  const ids = new Set<number>();
  for (const line of mountinfo.split('\n')) {
    const id = Number(line.split(' ', 1)[0]);
    if (line && Number.isInteger(id)) ids.add(id);
  }
  return ids;
}

/** The mnt_id line of a /proc/PID/fdinfo/N text. */
export function mntIdOf(fdinfo: string): number | undefined {
  const m = /^mnt_id:\s*(\d+)$/m.exec(fdinfo);
  return m ? Number(m[1]) : undefined;
}

/**
 * Why CRIU cannot dump these stdio targets, or undefined when it can: stdioProblem's rules, except that a path on
 * one of the container's own mounts (not a terminal) is the container's file, which CRIU dumps like any other.
 */
export function stdioTargetsProblem(targets: readonly StdioTarget[], containerMountIds: ReadonlySet<number>): string | undefined {
  const own = (t: StdioTarget) =>
    t.link !== undefined && t.link.startsWith('/') && !TERMINAL.test(t.link) && t.mntId !== undefined && containerMountIds.has(t.mntId);
  return stdioProblem(targets.map((t) => (own(t) ? undefined : t.link)));
}

/** stdioTargetsProblem for the live process `pid` (read from /proc); undefined when it has gone. */
export function readStdioProblem(pid: number): string | undefined {
  const tryRead = (read: () => string) => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const targets = [0, 1, 2].map((fd) => {
    const fdinfo = tryRead(() => readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    return { link: tryRead(() => readlinkSync(`/proc/${pid}/fd/${fd}`)), mntId: fdinfo === undefined ? undefined : mntIdOf(fdinfo) };
  });
  return stdioTargetsProblem(targets, mountIdsOf(tryRead(() => readFileSync(`/proc/${pid}/mountinfo`, 'utf8')) ?? ''));
}
