import { UV_READABLE, UV_WRITABLE, type RawSeqpacketSocket } from './binding';
import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { NativeError } from './native-error';
import { checkUint8Array, type ByteArray } from './validate';

const EBADF = 9;
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
  #raw: RawSeqpacketSocket | null;
  readonly #fd: number;
  #reads: PendingRead[] = [];
  #writes: PendingWrite[] = [];
  #armed = 0;
  #eof = false;

  private constructor(raw: RawSeqpacketSocket) {
    this.#raw = raw;
    this.#fd = raw.fd;
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
    if (this.#raw === null) throw NativeError.fromErrno('StreamSocket.fd', 'closed socket', EBADF);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#raw === null;
  }

  /**
   * Up to `maxBytes` bytes as soon as any are queued (exactly maxBytes with `exact`), or null once the peer has
   * closed and everything was read. A clean end in the middle of an exact read rejects with NativeError EPIPE.
   */
  read(maxBytes: number, options: StreamReadOptions = {}): Promise<StreamChunk | null> {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) return Promise.reject(new RangeError('StreamSocket.read: maxBytes must be a positive integer'));
    if (this.#raw === null) return Promise.reject(this.#closedError('recvmsg'));
    return new Promise((resolve, reject) => {
      const exact = options.exact === true;
      this.#reads.push({ max: maxBytes, peek: options.peek === true, exact, dest: exact ? Buffer.allocUnsafe(maxBytes) : undefined, got: 0, fds: [], resolve, reject });
      this.#drainReads();
      this.#arm();
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
    if (this.#raw === null) return Promise.reject(this.#closedError('sendmsg'));
    return new Promise((resolve, reject) => {
      this.#writes.push({ data, offset: 0, fds: fds.map((f) => f.fd), resolve, reject });
      this.#flushWrites();
      this.#arm();
    });
  }

  /** Idempotent. Pending reads and writes reject with NativeError EBADF. */
  close(): void {
    const raw = this.#raw;
    if (raw === null) return;
    this.#raw = null;
    this.#armed = 0;
    const reads = this.#reads.splice(0);
    const writes = this.#writes.splice(0);
    try {
      raw.close();
    } finally {
      for (const r of reads) r.reject(this.#closedError('recvmsg'));
      for (const w of writes) w.reject(this.#closedError('sendmsg'));
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #closedError(syscall: string): NativeError {
    return NativeError.fromErrno(syscall, `fd=${this.#fd}, socket closed`, EBADF);
  }

  #flushWrites(): void {
    const raw = this.#raw;
    while (raw !== null && this.#writes.length > 0) {
      const w = this.#writes[0]!;
      let n: number;
      try {
        n = raw.writeStream(w.offset === 0 ? w.data : w.data.subarray(w.offset), w.offset === 0 ? w.fds : []);
      } catch (error) {
        this.#writes.shift();
        w.reject(error);
        continue;
      }
      if (n === 0) return;
      w.offset += n;
      if (w.offset < w.data.byteLength) continue;
      this.#writes.shift();
      w.resolve();
    }
  }

  #drainReads(): void {
    const raw = this.#raw;
    while (raw !== null && this.#reads.length > 0) {
      const r = this.#reads[0]!;
      if (this.#eof) {
        this.#reads.shift();
        if (r.got === 0) r.resolve(null);
        else r.reject(NativeError.fromErrno('recvmsg', `fd=${this.#fd}, end of stream after ${r.got} of ${r.max} bytes`, 32));
        continue;
      }
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
      let chunk: { bytes: number; fds: number[] } | null | undefined;
      try {
        chunk = raw.readInto(into, at, length, r.peek);
      } catch (error) {
        if ((error as NativeError).code === 'ECONNRESET') {
          this.#eof = true;
          continue;
        }
        this.#reads.shift();
        r.reject(error);
        continue;
      }
      if (chunk === undefined) return;
      if (chunk === null) {
        this.#eof = true;
        continue;
      }
      r.fds.push(...chunk.fds.map((fd) => new FdHandle(fd)));
      r.got = at + chunk.bytes;
      if (r.exact && r.got < r.max) {
        // A peek that saw fewer bytes than wanted has to wait for more: readiness alone would fire at once.
        if (r.peek) return this.#pollPeek();
        continue;
      }
      this.#reads.shift();
      r.resolve({ data: r.dest ?? Buffer.from(into.subarray(0, r.got)), fds: r.fds });
    }
  }

  #scratch: Buffer | undefined;

  // The socket stays readable while bytes are queued, so an exact peek that is short waits on a timer instead.
  #peekTimer: NodeJS.Timeout | undefined;
  #pollPeek(): void {
    if (this.#peekTimer) return;
    this.#peekTimer = setTimeout(() => {
      this.#peekTimer = undefined;
      this.#drainReads();
      this.#arm();
    }, 1);
  }

  #arm(): void {
    const raw = this.#raw;
    if (raw === null) return;
    const shortPeek = this.#peekTimer !== undefined;
    const want = (this.#reads.length > 0 && !shortPeek ? UV_READABLE : 0) | (this.#writes.length > 0 ? UV_WRITABLE : 0);
    if (want === this.#armed) return;
    this.#armed = want;
    if (want === 0) raw.stop();
    else raw.wait(want, this.#onReady);
  }

  readonly #onReady = (error: Error | null): void => {
    this.#armed = 0;
    if (error !== null) {
      for (const w of this.#writes.splice(0)) w.reject(error);
      for (const r of this.#reads.splice(0)) r.reject(error);
      return;
    }
    this.#flushWrites();
    this.#drainReads();
    this.#arm();
  };
}
