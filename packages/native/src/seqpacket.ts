import { UV_READABLE, UV_WRITABLE, type RawMessage, type RawSeqpacketSocket } from './binding';
import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { NativeError } from './native-error';
import { checkLength, checkOptions, checkUint8Array, type ByteArray } from './validate';

const EBADF = 9;
const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;
// SO_SNDBUF must exceed the largest message by the kernel's bookkeeping (32 bytes today); leave generous room.
const SEND_BUFFER_SLACK_BYTES = 64 << 10;

export interface SeqpacketPairOptions {
  /**
   * The largest message either end must be able to send, default 1 MiB. It sizes SO_SNDBUF (forced with
   * CAP_NET_ADMIN, otherwise capped by net.core.wmem_max); a larger message fails with NativeError EMSGSIZE.
   */
  maxMessageBytes?: number;
}

export interface SeqpacketMessage {
  /** The whole message, exactly as sent. */
  data: Buffer;
  /** fds that came with it (SCM_RIGHTS), CLOEXEC; the receiver owns them and must close them. */
  fds: FdHandle[];
}

export interface RecvOptions {
  /** Aborting rejects this recv() with signal.reason; a message that arrives later stays queued for the next one. */
  signal?: AbortSignal;
}

interface PendingSend {
  data: ByteArray;
  fds: readonly (FdHandle | number)[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface PendingRecv {
  resolve: (message: SeqpacketMessage | null) => void;
  reject: (error: unknown) => void;
}

const internal = Symbol('SeqpacketSocket.internal');

/**
 * A connected AF_UNIX SOCK_SEQPACKET socket: message boundaries are kept, each send() arrives as one recv().
 * send() and recv() never block the event loop (nonblocking calls, readiness from libuv); concurrent calls are
 * served in call order. A pending recv() keeps the process alive, an idle socket does not.
 *
 * Ownership: the socket owns its fd (close(), `using`, or garbage collection closes it). To give one end to a child,
 * pass `socket.fd` in spawn's stdio and close the socket in the parent once spawn() has returned.
 */
export class SeqpacketSocket implements Disposable {
  #raw: RawSeqpacketSocket | null;
  readonly #fd: number;
  #sends: PendingSend[] = [];
  #recvs: PendingRecv[] = [];
  #armed = 0;
  #eof = false;

  /** @internal Use seqpacketPair(). */
  constructor(token: typeof internal, raw: RawSeqpacketSocket) {
    if (token !== internal) throw new TypeError('SeqpacketSocket: use seqpacketPair() to create sockets');
    this.#raw = raw;
    this.#fd = raw.fd;
  }

  /** The socket's fd, for spawn's stdio. Throws NativeError EBADF once closed. */
  get fd(): number {
    if (this.#raw === null) throw NativeError.fromErrno('SeqpacketSocket.fd', 'closed socket', EBADF);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#raw === null;
  }

  /**
   * Sends `data` as one message, with `fds` attached (SCM_RIGHTS). The kernel duplicates the fds when the message
   * is sent, so the caller keeps owning its handles but must keep them open until the promise settles.
   * An empty message must carry at least one fd: without one it would read as end of stream on the other side.
   * Rejects with NativeError: EPIPE once the peer is gone, EBADF if this socket is closed (or an fd is bad),
   * EMSGSIZE beyond the send buffer (see SeqpacketPairOptions.maxMessageBytes).
   */
  send(data: ByteArray, fds: readonly (FdHandle | number)[] = []): Promise<void> {
    try {
      this.#checkSend(data, fds);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#raw === null) return Promise.reject(this.#closedError('sendmsg'));
    return new Promise<void>((resolve, reject) => {
      this.#sends.push({ data, fds: [...fds], resolve, reject });
      this.#flushSends();
      this.#arm();
    });
  }

  #checkSend(data: ByteArray, fds: readonly (FdHandle | number)[]): void {
    checkUint8Array('SeqpacketSocket.send', 'data', data);
    if (!Array.isArray(fds)) throw new TypeError('SeqpacketSocket.send: fds must be an array of FdHandle or numbers');
    for (const fd of fds) {
      if (!(fd instanceof FdHandle) && !(typeof fd === 'number' && Number.isInteger(fd) && fd >= 0)) {
        throw new TypeError('SeqpacketSocket.send: fds must be FdHandle objects or non-negative integers');
      }
    }
    if (fds.length > 253) throw new RangeError('SeqpacketSocket.send: a message carries at most 253 fds');
    if (data.byteLength === 0 && fds.length === 0) {
      throw new RangeError('SeqpacketSocket.send: an empty message without fds is indistinguishable from end of stream');
    }
  }

  /**
   * Resolves with the next message, or with null once the peer has closed its end (or died) and every message it
   * sent has been received; null is sticky, every later recv() gets null too. Rejects with NativeError on other
   * failures, EBADF if this socket is closed while waiting.
   */
  recv(options?: RecvOptions): Promise<SeqpacketMessage | null> {
    let signal: AbortSignal | undefined;
    try {
      ({ signal } = checkOptions<RecvOptions>('SeqpacketSocket.recv', options, ['signal']));
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return Promise.reject(new TypeError('SeqpacketSocket.recv: signal must be an AbortSignal'));
    }
    if (this.#raw === null) return Promise.reject(this.#closedError('recvmsg'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<SeqpacketMessage | null>((resolve, reject) => {
      const pending: PendingRecv = { resolve, reject };
      if (signal !== undefined) {
        const onAbort = () => {
          const index = this.#recvs.indexOf(pending);
          if (index < 0) return;
          this.#recvs.splice(index, 1);
          reject(signal.reason);
          this.#arm();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        pending.resolve = (message) => {
          signal.removeEventListener('abort', onAbort);
          resolve(message);
        };
        pending.reject = (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        };
      }
      this.#recvs.push(pending);
      this.#drainRecvs();
      this.#arm();
    });
  }

  /** Idempotent. Pending send()s and recv()s reject with NativeError EBADF. */
  close(): void {
    const raw = this.#raw;
    if (raw === null) return;
    this.#raw = null;
    this.#armed = 0;
    const sends = this.#sends.splice(0);
    const recvs = this.#recvs.splice(0);
    try {
      raw.close();
    } finally {
      for (const s of sends) s.reject(this.#closedError('sendmsg'));
      for (const r of recvs) r.reject(this.#closedError('recvmsg'));
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #closedError(syscall: string): NativeError {
    return NativeError.fromErrno(syscall, `fd=${this.#fd}, socket closed`, EBADF);
  }

  #flushSends(): void {
    const raw = this.#raw;
    while (raw !== null && this.#sends.length > 0) {
      const pending = this.#sends[0]!;
      let sent: boolean;
      try {
        sent = raw.send(
          pending.data,
          pending.fds.map((fd) => (typeof fd === 'number' ? fd : fd.fd)),
        );
      } catch (error) {
        this.#sends.shift();
        pending.reject(error);
        continue;
      }
      if (!sent) return;
      this.#sends.shift();
      pending.resolve();
    }
  }

  #drainRecvs(): void {
    const raw = this.#raw;
    while (raw !== null && this.#recvs.length > 0) {
      if (this.#eof) {
        for (const r of this.#recvs.splice(0)) r.resolve(null);
        return;
      }
      let message: RawMessage | null | undefined;
      try {
        message = raw.recv();
      } catch (error) {
        // A peer that died without reading what we sent shows up as ECONNRESET: for the caller, as for EOF, the
        // peer is gone.
        if ((error as NativeError).code === 'ECONNRESET') {
          this.#eof = true;
          continue;
        }
        this.#recvs.shift()!.reject(error);
        continue;
      }
      if (message === undefined) return;
      if (message === null) {
        this.#eof = true;
        continue;
      }
      const fds = message.fds.map((fd) => new FdHandle(fd));
      this.#recvs.shift()!.resolve({ data: message.data, fds });
    }
  }

  // Waits for exactly what the queues need, or nothing: an idle socket must not hold the event loop open.
  #arm(): void {
    const raw = this.#raw;
    if (raw === null) return;
    const want = (this.#recvs.length > 0 ? UV_READABLE : 0) | (this.#sends.length > 0 ? UV_WRITABLE : 0);
    if (want === this.#armed) return;
    this.#armed = want;
    if (want === 0) raw.stop();
    else raw.wait(want, this.#onReady);
  }

  readonly #onReady = (error: Error | null): void => {
    this.#armed = 0;
    if (error !== null) {
      for (const s of this.#sends.splice(0)) s.reject(error);
      for (const r of this.#recvs.splice(0)) r.reject(error);
      return;
    }
    this.#flushSends();
    this.#drainRecvs();
    this.#arm();
  };
}

/**
 * @internal A SeqpacketSocket around `fd`, a socket of another kind that also keeps message boundaries (netlink: each
 * recv() is one datagram, send() goes to the kernel). Takes ownership of `fd`. For this package's own facades.
 */
export function messageSocketFromFd(fd: number): SeqpacketSocket {
  return new SeqpacketSocket(internal, new (binding().SeqpacketSocket)(fd));
}

/**
 * A connected pair of SOCK_SEQPACKET sockets (CLOEXEC, blocking at the kernel level, so an end handed to a child
 * behaves normally there). Typical use, CRIU's RPC:
 *
 *     const [socket, peer] = seqpacketPair();
 *     const criu = spawn('criu', ['swrk', '3'], { stdio: ['ignore', 'pipe', 'pipe', peer.fd] });
 *     peer.close();                      // the child has its own copy now
 *     await socket.send(request);
 *     const response = await socket.recv(); // null: criu exited
 */
export function seqpacketPair(options?: SeqpacketPairOptions): [SeqpacketSocket, SeqpacketSocket] {
  const { maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES } = checkOptions<SeqpacketPairOptions>(
    'seqpacketPair',
    options,
    ['maxMessageBytes'],
  );
  checkLength('seqpacketPair', 'maxMessageBytes', maxMessageBytes);
  if (maxMessageBytes > 1 << 30) throw new RangeError('seqpacketPair: maxMessageBytes must be at most 1 GiB');
  // The kernel doubles the value given to SO_SNDBUF (half of it is meant for bookkeeping).
  const sendBuffer = Math.ceil((maxMessageBytes + SEND_BUFFER_SLACK_BYTES) / 2);
  const [a, b] = binding().seqpacketPair(sendBuffer);
  return [new SeqpacketSocket(internal, a), new SeqpacketSocket(internal, b)];
}
