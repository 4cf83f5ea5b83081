// The raw signatures of build/Release/ferry_native.node, for src/ only: the public API is src/index.ts, which checks
// arguments before they get here (C++ re-checks only what memory safety needs) and wraps fds in handles.
import type { NativeErrorDetails } from './native-error';
import type { ByteArray } from './validate';

/** Readiness bits of RawSeqpacketSocket.wait(), equal to libuv's UV_READABLE / UV_WRITABLE. */
export const UV_READABLE = 1;
export const UV_WRITABLE = 2;

export interface RawMessage {
  data: Buffer;
  /** Received fds, CLOEXEC, owned by the caller from here on. */
  fds: number[];
}

export interface RawSeqpacketSocket {
  /** -1 once closed. */
  readonly fd: number;
  /** The kernel's SO_SNDBUF (a message must be a little smaller). */
  readonly sendBufferBytes: number;
  /** true when sent, false when it would block; throws NativeError otherwise. Never blocks. */
  send(data: ByteArray, fds: number[]): boolean;
  /** A message, null at end of stream, undefined when nothing is queued. Never blocks. */
  recv(): RawMessage | null | undefined;
  /** One-shot readiness callback on Node's event loop; a second wait() replaces the first. */
  wait(events: number, callback: (error: Error | null, revents: number) => void): void;
  stop(): void;
  /** Reads up to length queued bytes into dest at offset; null at end of stream, undefined when nothing is queued. */
  readInto(dest: ByteArray, offset: number, length: number, peek: boolean): { bytes: number; fds: number[] } | null | undefined;
  /** One nonblocking sendmsg: the bytes the kernel took (0 when it would block). */
  writeStream(data: ByteArray, fds: number[]): number;
  /** Idempotent; the native object also closes the fd when garbage-collected. */
  close(): void;
}

export interface RawSocketName {
  family: number;
  address: string;
  port: number;
}

export interface RawTcpCounters {
  bytesAcked: bigint;
  bytesReceived: bigint;
  unread: number;
  unsent: number;
  state: number;
}

export interface RawBinding {
  setErrorClass(errorClass: new (message: string, details: NativeErrorDetails) => Error): void;
  /**
   * Wraps an fd of any socket that keeps message boundaries (SEQPACKET, netlink) and takes ownership of it; the
   * send()/recv()/wait() calls are the same nonblocking ones.
   */
  SeqpacketSocket: new (fd: number) => RawSeqpacketSocket;
  seqpacketPair(sendBufferBytes: number): [RawSeqpacketSocket, RawSeqpacketSocket];
  /**
   * A bound, nonblocking, CLOEXEC AF_NETLINK socket of `protocol`, created by a thread that joined the network
   * namespace at nsPath ('' = the caller's own). Resolves with the fd; the caller owns it.
   */
  netlinkSocketInNetns(nsPath: string, protocol: number, receiveBufferBytes: number): Promise<number>;
  closeFd(fd: number): void;
  /** Reads [address, length] pairs back to back into dest; resolves with the unreadable [address, length] pairs. */
  vmRead(pid: number, ranges: BigUint64Array, dest: ByteArray): Promise<BigUint64Array>;
  /** Bytes from the start of array to the next page boundary (0..4095). */
  pageAlignOffset(array: ByteArray): number;
  allocOutOfForks(length: number): Buffer;
  /** Fills hashes[i] and/or zero[i] for pages firstPage .. firstPage + pageCount - 1 of data. */
  hashPages(
    data: ByteArray,
    firstPage: number,
    pageCount: number,
    hashes: BigUint64Array | null,
    zero: Uint8Array | null,
  ): Promise<void>;
  /** Reads the [fd, offset, length] ranges back to back into dest. */
  gatherFiles(triples: BigUint64Array, dest: ByteArray): Promise<void>;
  /** Writes consecutive bytes of src to the [fd, offset, length] ranges. */
  scatterFiles(triples: BigUint64Array, src: ByteArray): Promise<void>;
  /** out[i] = raw /proc/PID/pagemap entry of page firstPage + i (0 past the end of the address space). */
  pagemapRead(pid: number, firstPage: bigint, out: BigUint64Array): Promise<void>;
  /** PAGEMAP_SCAN over [start, end): [start, end, categories] triples of runs with any of returnMask's bits. */
  pagemapScan(pid: number, start: bigint, end: bigint, returnMask: number): Promise<BigUint64Array>;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(fd: number, signal: number): void;
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /** A new network namespace with lo up; resolves with an fd that keeps it alive. */
  createNetns(): Promise<number>;
  /** A socket created in the namespace behind netnsFd; bound and listening when address is a string. */
  socketInNetns(netnsFd: number, family: number, type: number, address: string | null, port: number, backlog: number): Promise<number>;
  /** Wraps any connected socket fd (taking ownership) in the poll-driven socket object. */
  adoptSocket(fd: number): RawSeqpacketSocket;
  streamSocketPair(): [number, number];
  listenUnix(path: string, backlog: number): number;
  acceptSocket(fd: number, timeoutMs: number): Promise<number>;
  connectSocket(fd: number, family: number, address: string, port: number, timeoutMs: number): Promise<void>;
  socketName(fd: number, peer: boolean): RawSocketName;
  socketQueues(fd: number): { unread: number; unsent: number };
  tcpCounters(fd: number): RawTcpCounters;
  setSendBuffer(fd: number, bytes: number): number;
  setNoDelay(fd: number): void;
  tcpNoDelay(fd: number): boolean;
  dupFd(fd: number): number;
  leaveTcpRepair(pid: number, fd: number): boolean;
  resetOnClose(fd: number): void;
  /** The fds among `fds` with a userfaultfd message (or a hang-up) within timeoutMs. */
  uffdPoll(fds: number[], timeoutMs: number): Promise<number[]>;
  /** Whole uffd_msg records (empty: none queued), null at end of file. */
  uffdRead(fd: number): Buffer | null;
  /** Bytes copied, or -errno. */
  uffdCopy(fd: number, dst: bigint, src: ByteArray, dontWake: boolean): number;
  /** Bytes mapped, or -errno. */
  uffdZeropage(fd: number, start: bigint, len: bigint): number;
  /** op 0 = UFFDIO_WAKE, 1 = UFFDIO_UNREGISTER: 0 or -errno. */
  uffdRange(fd: number, op: number, start: bigint, len: bigint): number;
  /** Seconds one memcpy of src into dest takes. Benchmark only (src/testing.ts). */
  memcpyBench(dest: ByteArray, src: ByteArray): number;
}
