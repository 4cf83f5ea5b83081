import { binding } from './load-binding';
import { NativeError } from './native-error';

// Last line of defence against leaks: a handle that is garbage-collected while open closes its fd. Closing
// explicitly (or `using`) is still the contract, since GC timing is unpredictable.
const unclosed = new FinalizationRegistry<number>((fd) => {
  try {
    binding().closeFd(fd);
  } catch {
    // Nothing to report to: the owner is gone.
  }
});

/**
 * Owns one file descriptor: closes it on close(), on `using`/dispose, or, failing both, when garbage-collected.
 * close() is idempotent. Reading `fd` after close throws NativeError EBADF rather than handing out a number that
 * may already belong to someone else.
 */
export class FdHandle implements Disposable {
  #fd: number;

  /** Takes ownership of `fd`: from here on only this handle may close it. */
  constructor(fd: number) {
    if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new TypeError(`FdHandle: fd must be an integer`);
    if (fd < 0 || fd > 0x7fffffff) throw new RangeError(`FdHandle: fd must be a non-negative int, got ${fd}`);
    this.#fd = fd;
    unclosed.register(this, fd, this);
  }

  get fd(): number {
    if (this.#fd < 0) throw NativeError.fromErrno('FdHandle.fd', 'closed handle', 9 /* EBADF */);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    unclosed.unregister(this);
    binding().closeFd(fd);
  }

  /**
   * Gives up ownership: returns the fd, which the caller must now close (or hand to something that will). The
   * handle reads as closed afterwards. Throws NativeError EBADF if it was closed already.
   */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    unclosed.unregister(this);
    return fd;
  }

  /** A new handle on a CLOEXEC duplicate of this fd; both must be closed. */
  dup(): FdHandle {
    return new FdHandle(binding().dupFd(this.fd));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return this.#fd < 0 ? 'FdHandle(closed)' : `FdHandle(${this.#fd})`;
  }
}
