import { constants } from 'node:os';

import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { checkPid } from './validate';

/**
 * A pidfd for process `pid` (pidfd_open): it keeps naming that process even after the pid is reused, so signals sent
 * through it cannot hit a stranger. The caller owns the handle. Throws NativeError ESRCH when there is no such process.
 */
export function pidfdOpen(pid: number): FdHandle {
  checkPid('pidfdOpen', pid);
  return new FdHandle(binding().pidfdOpen(pid));
}

/**
 * Sends `signal` (a name like 'SIGKILL' or a number; 0 only checks the process is alive) to the process behind
 * `pidfd`. Throws NativeError ESRCH once that process has exited (even if its pid was reused).
 */
export function pidfdSendSignal(pidfd: FdHandle, signal: NodeJS.Signals | number): void {
  if (!(pidfd instanceof FdHandle)) throw new TypeError('pidfdSendSignal: pidfd must be an FdHandle from pidfdOpen()');
  let number: number;
  if (typeof signal === 'string') {
    const found = (constants.signals as Record<string, number>)[signal];
    if (found === undefined) throw new RangeError(`pidfdSendSignal: unknown signal ${JSON.stringify(signal)}`);
    number = found;
  } else if (typeof signal === 'number' && Number.isInteger(signal) && signal >= 0 && signal <= 64) {
    number = signal;
  } else {
    throw new TypeError(`pidfdSendSignal: signal must be a signal name or a number in 0..64`);
  }
  binding().pidfdSendSignal(pidfd.fd, number);
}

/**
 * A duplicate of fd `targetFd` of the process behind `pidfd` (pidfd_getfd(2), Linux >= 5.6; needs ptrace rights over
 * it, which root has). The caller owns the returned handle; the process keeps its own fd. Throws NativeError EBADF
 * when the process has no such fd, ESRCH once it has exited.
 */
export function pidfdGetfd(pidfd: FdHandle, targetFd: number): FdHandle {
  if (!(pidfd instanceof FdHandle)) throw new TypeError('pidfdGetfd: pidfd must be an FdHandle from pidfdOpen()');
  if (!Number.isInteger(targetFd) || targetFd < 0 || targetFd > 0x7fffffff) {
    throw new RangeError(`pidfdGetfd: targetFd must be a non-negative int, got ${String(targetFd)}`);
  }
  return new FdHandle(binding().pidfdGetfd(pidfd.fd, targetFd));
}
