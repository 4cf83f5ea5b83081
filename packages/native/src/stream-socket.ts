import type { RawSeqpacketSocket } from './binding';
import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { NativeError } from './native-error';
import { SocketDriver, type ReadStep, type WriteStep } from './socket-driver';
import { checkUint8Array, type ByteArray } from './validate';

const EPIPE = 32;
// Scratch buffer of a non-exact read: the bytes that arrived are copied out of it.
const SCRATCH_BYTES = 256 << 10;

export interface StreamChunk {
  data: Buffer;
  /** fds that came with these bytes (SCM_RIGHTS on a unix socket), CLOEXEC, owned by the receiver. */
  fds: FdHandle[];
}

export interface StreamReadOptions {
  /** Leave the bytes queued (MSG_PEEK): the next read sees them again. Takes no fds. */
  peek?: boolean;
  /** Resolve only with exactly maxBytes bytes (or null at a clean end before the first byte). */
  exact?: boolean;
}

interface PendingRead {
  max: number;
  peek: boolean;
  exact: boolean;
  /** Exact reads: the whole result, filled in place. */
  dest?: Buffer;
  got: number;
  fds: FdHandle[];
  resolve: (chunk: StreamChunk | null) => void;
  reject: (error: unknown) => void;
}

interface PendingWrite {
  data: ByteArray;
  offset: number;
  fds: number[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Any connected socket (TCP, unix stream) driven from the event loop without ever blocking it, with what Node's
 * net.Socket cannot do on a raw fd: peeking (bytes stay queued until consumed on purpose), fds with unix stream
 * bytes, and writes whose progress the caller sees byte for byte. Reads and writes are each served in call order.
 *
 * Ownership: the socket owns its fd from adopt() on (close(), `using`, or garbage collection closes it).
 */
export class StreamSocket implements Disposable {
  readonly #driver: SocketDriver<StreamChunk | null, PendingRead, PendingWrite>;
  #scratch: Buffer | undefined;

  private constructor(raw: RawSeqpacketSocket) {
    const fd = raw.fd;
    this.#driver = new SocketDriver(raw, {
      write: (handle, w) => this.#writeStep(handle, w),
      read: (handle, r) => this.#readStep(handle, r),
      ended: (r) => {
        if (r.got === 0) r.resolve(null);
        else r.reject(NativeError.fromErrno('recvmsg', `fd=${fd}, end of stream after ${r.got} of ${r.max} bytes`, EPIPE));
      },
    });
  }

  /** Takes over the fd of `handle` (which reads as closed afterwards). */
  static adopt(handle: FdHandle): StreamSocket {
    if (!(handle instanceof FdHandle)) throw new TypeError('StreamSocket.adopt: expected an FdHandle');
    const fd = handle.release();
    try {
      return new StreamSocket(binding().adoptSocket(fd));
    } catch (error) {
      binding().closeFd(fd);
      throw error;
    }
  }

  get fd(): number {
    return this.#driver.fd('StreamSocket.fd');
  }

  get closed(): boolean {
    return this.#driver.closed;
  }

  /**
   * Up to `maxBytes` bytes as soon as any are queued (exactly maxBytes with `exact`), or null once the peer has
   * closed and everything was read. A clean end in the middle of an exact read rejects with NativeError EPIPE.
   */
  read(maxBytes: number, options: StreamReadOptions = {}): Promise<StreamChunk | null> {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) return Promise.reject(new RangeError('StreamSocket.read: maxBytes must be a positive integer'));
    if (this.#driver.closed) return Promise.reject(this.#driver.closedError('recvmsg'));
    return new Promise((resolve, reject) => {
      const exact = options.exact === true;
      this.#driver.read({ max: maxBytes, peek: options.peek === true, exact, dest: exact ? Buffer.allocUnsafe(maxBytes) : undefined, got: 0, fds: [], resolve, reject });
    });
  }

  /** Writes all of `data` (fds attached to its first byte); resolves once the kernel has taken the last byte. */
  write(data: ByteArray, fds: readonly FdHandle[] = []): Promise<void> {
    try {
      checkUint8Array('StreamSocket.write', 'data', data);
      if (data.byteLength === 0) throw new RangeError('StreamSocket.write: data must not be empty');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#driver.closed) return Promise.reject(this.#driver.closedError('sendmsg'));
    return new Promise((resolve, reject) => {
      this.#driver.write({ data, offset: 0, fds: fds.map((f) => f.fd), resolve, reject });
    });
  }

  /** Idempotent. Pending reads and writes reject with NativeError EBADF. */
  close(): void {
    this.#driver.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #writeStep(raw: RawSeqpacketSocket, w: PendingWrite): WriteStep {
    const n = raw.writeStream(w.offset === 0 ? w.data : w.data.subarray(w.offset), w.offset === 0 ? w.fds : []);
    if (n === 0) return 'blocked';
    w.offset += n;
    return w.offset < w.data.byteLength ? 'partial' : 'done';
  }

  #readStep(raw: RawSeqpacketSocket, r: PendingRead): ReadStep<StreamChunk> {
    let into: Buffer;
    let at: number;
    if (r.dest) {
      into = r.dest;
      at = r.peek ? 0 : r.got; // a peek sees everything from the start again
    } else {
      this.#scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
      into = this.#scratch;
      at = 0;
    }
    const length = r.dest ? r.max - at : Math.min(r.max, into.length);
    const chunk = raw.readInto(into, at, length, r.peek);
    if (chunk === undefined) return 'blocked';
    if (chunk === null) return 'end';
    r.fds.push(...chunk.fds.map((fd) => new FdHandle(fd)));
    r.got = at + chunk.bytes;
    // A peek that saw fewer bytes than wanted has to wait for more: readiness alone would fire at once.
    if (r.exact && r.got < r.max) return r.peek ? 'later' : 'partial';
    return { value: { data: r.dest ?? Buffer.from(into.subarray(0, r.got)), fds: r.fds } };
  }
}
