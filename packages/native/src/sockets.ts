import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { FAMILY_NUMBERS, socketInNetns, type SocketFamily } from './netns';

const NAMES_BY_NUMBER = new Map(Object.entries(FAMILY_NUMBERS).map(([name, n]) => [n, name as SocketFamily]));
const DEFAULT_TIMEOUT_MS = 10_000;

export interface SocketName {
  family: SocketFamily | 'other';
  /** Numeric address, or the path of a unix socket ('' when unnamed). */
  address: string;
  /** 0 for unix sockets. */
  port: number;
}

/**
 * The kernel's byte counters of a TCP socket, which survive the process that used it as long as another process
 * holds the socket: a successor learns exactly how far its predecessor got.
 */
export interface TcpCounters {
  /**
   * Bytes the application ever wrote to the socket (acknowledged by the peer, plus still queued). On the end that
   * connected, the kernel counts its SYN too: one more than written. The accepted end counts exactly.
   */
  bytesWritten: bigint;
  /** Bytes the application ever read from the socket (received, minus still queued). */
  bytesRead: bigint;
  /** Received bytes not read yet (SIOCINQ). */
  unread: number;
  /** Written bytes the peer has not acknowledged yet (SIOCOUTQ). */
  unsent: number;
}

function checkHandle(fn: string, handle: unknown): FdHandle {
  if (!(handle instanceof FdHandle)) throw new TypeError(`${fn}: expected an FdHandle`);
  return handle;
}

function checkTimeout(fn: string, timeoutMs: number): number {
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1 || timeoutMs > 0x7fffffff) throw new RangeError(`${fn}: timeoutMs must be -1 (none) or a non-negative integer`);
  return timeoutMs;
}

/** A connected AF_UNIX SOCK_STREAM pair, CLOEXEC and blocking (an end for a child must not be O_NONBLOCK). */
export function streamSocketPair(): [FdHandle, FdHandle] {
  const [a, b] = binding().streamSocketPair();
  return [new FdHandle(a), new FdHandle(b)];
}

/**
 * A unix SOCK_STREAM socket listening at `path` (which must not exist). Who may connect is decided by the directory
 * it is in: put it in a 0700 directory to make it reachable by its owner only.
 */
export function listenUnix(path: string, backlog = 8): FdHandle {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('listenUnix: path must be a non-empty string');
  return new FdHandle(binding().listenUnix(path, backlog));
}

/** The next connection on a listening socket; NativeError ETIMEDOUT after timeoutMs (-1: wait forever). */
export async function acceptSocket(listener: FdHandle, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<FdHandle> {
  checkHandle('acceptSocket', listener);
  return new FdHandle(await binding().acceptSocket(listener.fd, checkTimeout('acceptSocket', timeoutMs)));
}

/**
 * Connects `socket` (borrowed) to a numeric address and port, or to a unix socket path (port ignored). The wait
 * runs on a pool thread; NativeError ECONNREFUSED, ETIMEDOUT after timeoutMs, ...
 */
export async function connectSocket(socket: FdHandle, family: SocketFamily, address: string, port = 0, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
  checkHandle('connectSocket', socket);
  const number = FAMILY_NUMBERS[family];
  if (number === undefined) throw new RangeError(`connectSocket: family must be one of ${Object.keys(FAMILY_NUMBERS).join(', ')}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('connectSocket: port must be 0..65535');
  await binding().connectSocket(socket.fd, number, address, port, checkTimeout('connectSocket', timeoutMs));
}

/** getsockname (or getpeername with peer: true). */
export function socketName(socket: FdHandle, peer = false): SocketName {
  const raw = binding().socketName(checkHandle('socketName', socket).fd, peer);
  return { family: NAMES_BY_NUMBER.get(raw.family) ?? 'other', address: raw.address, port: raw.port };
}

/** SIOCINQ / SIOCOUTQ of any socket. */
export function socketQueues(socket: FdHandle): { unread: number; unsent: number } {
  return binding().socketQueues(checkHandle('socketQueues', socket).fd);
}

export function tcpCounters(socket: FdHandle): TcpCounters {
  const raw = binding().tcpCounters(checkHandle('tcpCounters', socket).fd);
  return {
    bytesWritten: raw.bytesAcked + BigInt(raw.unsent),
    bytesRead: raw.bytesReceived - BigInt(raw.unread),
    unread: raw.unread,
    unsent: raw.unsent,
  };
}

/** Sets the send buffer (forced past net.core.wmem_max with CAP_NET_ADMIN); returns what the kernel granted. */
export function setSendBuffer(socket: FdHandle, bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 1) throw new RangeError('setSendBuffer: bytes must be a positive integer');
  return binding().setSendBuffer(checkHandle('setSendBuffer', socket).fd, bytes);
}

/** Whether TCP_NODELAY is set on a TCP socket. */
export function tcpNoDelay(socket: FdHandle): boolean {
  return binding().tcpNoDelay(checkHandle('tcpNoDelay', socket).fd);
}

/**
 * A connected TCP pair over 127.0.0.1 inside the network namespace behind `netns`: a listener on a free port, one
 * connection, and the listener closed before this returns, so nothing ever listens once the pair exists. Unlike a
 * socketpair, each end has TCP's byte counters (tcpCounters; the accepted end's count exactly). Both ends are
 * blocking, CLOEXEC and TCP_NODELAY (the pair carries small requests and answers: with Nagle's algorithm each
 * exchange waited 40 ms for a delayed ACK); the caller owns them. `[connecting end, accepted end]`.
 */
export async function tcpLoopbackPair(netns: FdHandle): Promise<[FdHandle, FdHandle]> {
  using listener = await socketInNetns(netns, { family: 'inet', type: 'stream', bind: { address: '127.0.0.1', port: 0 }, listen: 1 });
  const { port } = socketName(listener);
  const client = await socketInNetns(netns, { family: 'inet', type: 'stream' });
  try {
    await connectSocket(client, 'inet', '127.0.0.1', port);
    const accepted = await acceptSocket(listener, 5_000);
    for (const end of [client, accepted]) binding().setNoDelay(end.fd);
    return [client, accepted];
  } catch (error) {
    client.close();
    throw error;
  }
}
