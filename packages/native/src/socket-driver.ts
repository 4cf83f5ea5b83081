import { UV_READABLE, UV_WRITABLE, type RawSeqpacketSocket } from './binding';
import { NativeError } from './native-error';

const EBADF = 9;

/** A read or write waiting in a SocketDriver's queue. */
export interface Pending<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
}

/**
 * How far one nonblocking attempt on the oldest pending read or write got: `blocked`, the kernel has nothing (or
 * takes nothing) now, wait for readiness; `partial`, progress but more to do, try again at once; `done` (a write) or
 * `{ value }` (a read), it is served; `end` (a read), the peer closed its end; `later` (a read), what is wanted is not
 * all queued yet although the socket reads as ready (a short exact peek), so try again on a timer.
 */
export type WriteStep = 'blocked' | 'partial' | 'done';
export type ReadStep<V> = 'blocked' | 'partial' | 'end' | 'later' | { value: V };

/** What a socket kind (messages, a byte stream) does with one attempt; the driver does the queueing and waiting. */
export interface SocketIo<V, R extends Pending<V>, W extends Pending<void>> {
  /** Throws NativeError, which rejects `w` alone. */
  write(raw: RawSeqpacketSocket, w: W): WriteStep;
  /** Throws NativeError, which rejects `r` alone (ECONNRESET counts as the end of the stream). */
  read(raw: RawSeqpacketSocket, r: R): ReadStep<V>;
  /** Settles `r` after the end of the stream, once everything queued was read. */
  ended(r: R): void;
}

/**
 * The event-loop driver of a nonblocking socket handle (SeqpacketSocket, StreamSocket): reads and writes each served
 * in call order, readiness from libuv, never blocking the loop. It waits for exactly what the queues need, or nothing:
 * an idle socket must not hold the event loop open.
 *
 * Ownership: owns `raw` (close() closes it). Closing rejects what is pending with NativeError EBADF.
 */
export class SocketDriver<V, R extends Pending<V>, W extends Pending<void>> {
  #raw: RawSeqpacketSocket | null;
  readonly #fd: number;
  readonly #io: SocketIo<V, R, W>;
  #reads: R[] = [];
  #writes: W[] = [];
  #armed = 0;
  #eof = false;
  // The socket stays readable while bytes are queued, so a read that returned `later` waits on a timer instead.
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(raw: RawSeqpacketSocket, io: SocketIo<V, R, W>) {
    this.#raw = raw;
    this.#fd = raw.fd;
    this.#io = io;
  }

  get closed(): boolean {
    return this.#raw === null;
  }

  /** The fd; NativeError EBADF (naming `what`) once closed. */
  fd(what: string): number {
    if (this.#raw === null) throw NativeError.fromErrno(what, 'closed socket', EBADF);
    return this.#fd;
  }

  closedError(syscall: string): NativeError {
    return NativeError.fromErrno(syscall, `fd=${this.#fd}, socket closed`, EBADF);
  }

  /** Queues `r` (the caller has checked that the socket is open). */
  read(r: R): void {
    this.#reads.push(r);
    this.#drainReads();
    this.#arm();
  }

  write(w: W): void {
    this.#writes.push(w);
    this.#flushWrites();
    this.#arm();
  }

  /** Takes `r` out of the queue unserved (an aborted read); false when it was settled already. */
  cancelRead(r: R): boolean {
    const index = this.#reads.indexOf(r);
    if (index < 0) return false;
    this.#reads.splice(index, 1);
    this.#arm();
    return true;
  }

  /** Idempotent. */
  close(): void {
    const raw = this.#raw;
    if (raw === null) return;
    this.#raw = null;
    this.#armed = 0;
    const writes = this.#writes.splice(0);
    const reads = this.#reads.splice(0);
    try {
      raw.close();
    } finally {
      for (const w of writes) w.reject(this.closedError('sendmsg'));
      for (const r of reads) r.reject(this.closedError('recvmsg'));
    }
  }

  #flushWrites(): void {
    const raw = this.#raw;
    while (raw !== null && this.#writes.length > 0) {
      const w = this.#writes[0]!;
      let step: WriteStep;
      try {
        step = this.#io.write(raw, w);
      } catch (error) {
        this.#writes.shift();
        w.reject(error);
        continue;
      }
      if (step === 'blocked') return;
      if (step === 'partial') continue;
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
        this.#io.ended(r);
        continue;
      }
      let step: ReadStep<V>;
      try {
        step = this.#io.read(raw, r);
      } catch (error) {
        // A peer that died without reading what we sent shows up as ECONNRESET: for the caller, as for EOF, the
        // peer is gone.
        if ((error as NativeError).code === 'ECONNRESET') {
          this.#eof = true;
          continue;
        }
        this.#reads.shift();
        r.reject(error);
        continue;
      }
      if (step === 'blocked') return;
      if (step === 'partial') continue;
      if (step === 'end') {
        this.#eof = true;
        continue;
      }
      if (step === 'later') return this.#retryLater();
      this.#reads.shift();
      r.resolve(step.value);
    }
  }

  #retryLater(): void {
    if (this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#drainReads();
      this.#arm();
    }, 1);
  }

  #arm(): void {
    const raw = this.#raw;
    if (raw === null) return;
    const retrying = this.#retryTimer !== undefined;
    const want = (this.#reads.length > 0 && !retrying ? UV_READABLE : 0) | (this.#writes.length > 0 ? UV_WRITABLE : 0);
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
