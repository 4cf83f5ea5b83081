import { getSystemErrorMap } from 'node:util';

/** [name, description] of a positive errno, e.g. ['ESRCH', 'no such process']. */
function systemError(errno: number): [string, string] {
  return getSystemErrorMap().get(-errno) ?? [`E${errno}`, `error ${errno}`];
}

/** The name of a positive errno, e.g. `ESRCH`. */
export function errnoName(errno: number): string {
  return systemError(errno)[0];
}

export interface NativeErrorDetails {
  /** The system call (or libuv call) that failed, e.g. `process_vm_readv`. */
  readonly syscall: string;
  /** The errno value, positive as in errno.h (Node's own system errors carry the negated value). */
  readonly errno: number;
  /** The errno name, e.g. `ESRCH`. */
  readonly code: string;
}

/**
 * Every failure of a native call in @ferry/native. The message names the call and the argument at fault:
 * `process_vm_readv(pid=123): No such process`, `sendmsg(fd=17, 5 bytes, 0 fds): Broken pipe`.
 * Invalid arguments are reported before any call as TypeError or RangeError instead.
 */
export class NativeError extends Error implements NativeErrorDetails {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;

  // C++ (cc/errors.cc) constructs it with exactly these two arguments; keep the signature.
  constructor(message: string, details: NativeErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NativeError';
    this.syscall = details.syscall;
    this.errno = details.errno;
    this.code = details.code;
  }

  /** A NativeError for a failure found in TypeScript, worded like the ones C++ makes. */
  static fromErrno(syscall: string, subject: string, errno: number, options?: ErrorOptions): NativeError {
    const [code, description] = systemError(errno);
    const text = description.charAt(0).toUpperCase() + description.slice(1);
    return new NativeError(`${syscall}${subject ? `(${subject})` : ''}: ${text}`, { syscall, errno, code }, options);
  }

  /** Wraps an error thrown by Node's fs (ErrnoException), keeping it as `cause`. */
  static fromNodeError(error: unknown, syscall: string, subject: string): unknown {
    const e = error as NodeJS.ErrnoException;
    if (typeof e?.errno !== 'number') return error;
    return NativeError.fromErrno(e.syscall ?? syscall, subject, Math.abs(e.errno), { cause: error });
  }
}
