import { binding } from './load-binding';
import { checkPid } from './validate';

/**
 * Takes socket `fd` of process `pid` out of TCP repair mode (through a copy of the fd from pidfd_getfd; the copy is
 * closed again). Returns true when it was in repair mode, false when it was not, is not a TCP socket, or is gone.
 * Needs CAP_SYS_PTRACE over the process and CAP_NET_ADMIN in its network namespace; throws NativeError otherwise.
 */
export function leaveTcpRepair(pid: number, fd: number): boolean {
  checkPid('leaveTcpRepair', pid);
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('leaveTcpRepair: fd must be a non-negative integer');
  return binding().leaveTcpRepair(pid, fd);
}

/**
 * Makes every close of TCP socket `fd` of this process a reset (SO_LINGER 0), including the close the kernel does
 * when this process dies: a peer that reads a clean end as "all done" then reads failure instead.
 */
export function resetOnClose(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('resetOnClose: fd must be a non-negative integer');
  binding().resetOnClose(fd);
}
