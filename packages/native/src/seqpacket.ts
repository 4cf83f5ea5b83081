import type { RawSeqpacketSocket } from './binding';
import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { SocketDriver } from './socket-driver';
import { checkLength, checkOptions, checkUint8Array, type ByteArray } from './validate';

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
  readonly #driver: SocketDriver<SeqpacketMessage | null, PendingRecv, PendingSend>;

  /** @internal Use seqpacketPair(). */
  constructor(token: typeof internal, raw: RawSeqpacketSocket) {
    if (token !== internal) throw new TypeError('SeqpacketSocket: use seqpacketPair() to create sockets');
    this.#driver = new SocketDriver(raw, {
      write: (handle, pending) => (handle.send(pending.data, pending.fds.map((fd) => (typeof fd === 'number' ? fd : fd.fd))) ? 'done' : 'blocked'),
      read: (handle) => {
        const message = handle.recv();
        if (message === undefined) return 'blocked';
        if (message === null) return 'end';
        return { value: { data: message.data, fds: message.fds.map((fd) => new FdHandle(fd)) } };
      },
      ended: (pending) => pending.resolve(null),
    });
  }

  /** The socket's fd, for spawn's stdio. Throws NativeError EBADF once closed. */
  get fd(): number {
    return this.#driver.fd('SeqpacketSocket.fd');
  }

  get closed(): boolean {
    return this.#driver.closed;
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
    if (this.#driver.closed) return Promise.reject(this.#driver.closedError('sendmsg'));
    return new Promise<void>((resolve, reject) => {
      this.#driver.write({ data, fds: [...fds], resolve, reject });
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
    if (this.#driver.closed) return Promise.reject(this.#driver.closedError('recvmsg'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<SeqpacketMessage | null>((resolve, reject) => {
      const pending: PendingRecv = { resolve, reject };
      if (signal !== undefined) {
        const onAbort = () => {
          if (this.#driver.cancelRead(pending)) reject(signal.reason);
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
      this.#driver.read(pending);
    });
  }

  /** Idempotent. Pending send()s and recv()s reject with NativeError EBADF. */
  close(): void {
    this.#driver.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
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
