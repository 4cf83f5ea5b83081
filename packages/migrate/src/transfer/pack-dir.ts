/**
 * packDir: sends a directory as a transfer stream (stream-format.ts) into any Writable (an SSH channel, a pipe).
 *
 * Contract:
 * - Reads only, never follows symlinks, and reaches every entry through its parent directory's open descriptor
 *   (walk-tree.ts), so a container that swaps a directory for a symlink while we copy cannot make us send host
 *   files or names; an opened file's path is checked against /proc/self/fd as well.
 * - The source may keep changing (a running container's rootfs): an entry that vanishes is left out, a file that
 *   grows is cut at the size first seen, one that shrinks is padded with zeros. Either way its times changed, so a
 *   snapshot taken before packDir differs from one taken after, and diffSnapshots sends it again.
 * - `writable` belongs to the caller. packDir writes with backpressure and ends it after the archive unless
 *   `end: false`; on failure it neither ends nor destroys it: close it, and the receiver fails for want of the
 *   end marker.
 * - Throws ERR_ABORTED (signal), ERR_TRANSPORT_CLOSED (the writable failed or closed), ERR_PRECHECK_BAD_INPUT (a bad
 *   path in `only`/`deleted`, or an unreadable source).
 */
import { closeSync, constants, createReadStream, existsSync, fstatSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, type BigIntStats } from 'node:fs';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { FerryError } from '@ferry/core';
import { EventLoopYielder } from './event-loop-yield';
import { absolutePath, parentPath, relativePathProblem, ROOT_PATH } from './relative-path';
import { CHUNK_BYTES, markerHeader, metaHeader, TRANSFER_FORMAT, type BeginMarker, type EndMarker, type TarHeader } from './stream-format';
import { stopSignal, waitForEvent } from './stream-waits';
import { abortError, asTransferError, isErrno, sourceError, transportError } from './transfer-errors';
import type { TransferEvent, TransferStats } from './transfer-types';
import { entryTypeOf, fdPath, openDirectoryBeneath, specialKind, VANISHED_ERRNOS, walkTree, type WalkItem } from './walk-tree';

export interface PackOptions {
  /** Send only these entries (paths relative to `dir`, '.' for the root): a directory listed here is sent without its contents. */
  only?: readonly string[];
  /** Paths the receiver removes (recursively) before it writes anything. */
  deleted?: readonly string[];
  /** Bytes of file content sent so far. */
  onProgress?: (bytesSent: number) => void;
  /** Warnings: device nodes, fifos, sockets and non-UTF-8 names are skipped. */
  onEvent?: (event: TransferEvent) => void;
  signal?: AbortSignal;
  /** End `writable` after the archive, as stream.pipe does (default true). */
  end?: boolean;
}

/** Small tar pieces (headers, small files) are gathered into writes of at least this size: fewer SSH packets. */
const COALESCE_BYTES = 64 << 10;
/** Errors opening a path that was replaced since the walk (ELOOP: by a symlink; ENXIO: by a socket). */
const OPEN_VANISHED_ERRNOS = [...VANISHED_ERRNOS, 'ELOOP', 'ENXIO'];
/** O_NONBLOCK: a file swapped for a fifo must not hang the open. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

type Candidate = WalkItem | { kind: 'path'; path: string };

type Prepared =
  | { kind: 'vanished' }
  | { kind: 'warning'; event: TransferEvent }
  /** A file larger than CHUNK_BYTES comes with its open descriptor, to stream; smaller ones are read already. */
  | { kind: 'entry'; header: TarHeader; data?: Buffer; fd?: number; abs?: string };

export async function packDir(dir: string, writable: Writable, options: PackOptions = {}): Promise<TransferStats> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const only = options.only === undefined ? undefined : checkedPaths(options.only, 'only');
  const deleted = checkedPaths(options.deleted ?? [], 'deleted').filter((p) => p !== ROOT_PATH);
  let root: string;
  try {
    root = realpathSync(dir);
  } catch (err) {
    throw sourceError(dir, err);
  }

  const sender = new Sender(root, writable, options);
  const onAbort = () => sender.fail(abortError(signal as AbortSignal));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await sender.run(only, deleted);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function checkedPaths(paths: readonly string[], option: string): string[] {
  for (const path of paths) {
    const problem = relativePathProblem(path);
    if (problem !== undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `packDir: ${option} holds ${JSON.stringify(path)} (${problem})`, {
        hint: 'Pass paths relative to the directory, as snapshotDir and diffSnapshots produce them.',
      });
    }
  }
  // Sorted, a parent comes before its children (a prefix sorts first).
  return [...new Set(paths)].sort();
}

class Sender {
  private readonly pack = tar.pack({ highWaterMark: CHUNK_BYTES });
  private readonly stopper = stopSignal();
  private readonly stats: TransferStats = { files: 0, bytes: 0 };
  private readonly yielder = new EventLoopYielder();
  private readonly checkFdPaths = existsSync('/proc/self/fd');

  constructor(
    private readonly root: string,
    private readonly writable: Writable,
    private readonly options: PackOptions,
  ) {
    // Failures reach us through entry callbacks and the iterator; the streams' own 'error' events would be unhandled.
    this.pack.on('error', ignore);
  }

  fail(err: unknown): void {
    if (this.stopper.fail(err)) this.pack.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  async run(only: string[] | undefined, deleted: string[]): Promise<TransferStats> {
    const { writable } = this;
    const onError = (err: Error) => this.fail(transportError('the transfer stream failed', err));
    const onClose = () => {
      if (!writable.writableFinished) this.fail(transportError('the transfer stream closed before the archive was sent'));
    };
    writable.on('error', onError);
    writable.on('close', onClose);
    try {
      await Promise.all([this.produce(only, deleted).catch((err) => this.fail(err)), this.pump().catch((err) => this.fail(err))]);
    } finally {
      writable.off('error', onError);
      writable.off('close', onClose);
    }
    const failure = this.stopper.failure();
    if (failure !== undefined) throw asTransferError(failure, 'sending the directory failed');
    return { ...this.stats };
  }

  // ---- the archive -------------------------------------------------------------------------------------------

  private async produce(only: string[] | undefined, deleted: string[]): Promise<void> {
    await this.addMarker('begin', { format: TRANSFER_FORMAT } satisfies BeginMarker);
    if (deleted.length > 0) await this.addMarker('deleted', deleted);
    const candidates: AsyncIterable<Candidate> | Iterable<Candidate> =
      only === undefined ? walkTree(this.root, this.yielder) : only.map((path) => ({ kind: 'path', path }) as const);
    for await (const candidate of candidates) {
      if (this.stopper.failure() !== undefined) return;
      const item = this.prepare(candidate);
      if (item.kind === 'warning') this.options.onEvent?.(item.event);
      if (item.kind === 'entry') {
        this.stats.files++;
        if (item.fd !== undefined) {
          await this.addLargeFile(item.header, item.fd, item.abs as string);
        } else {
          await this.addEntry(item.header, item.data);
          if (item.data !== undefined) {
            this.stats.bytes += item.data.length;
            this.options.onProgress?.(this.stats.bytes);
          }
        }
      }
      await this.yielder.maybeYield();
    }
    await this.addMarker('end', { files: this.stats.files, bytes: this.stats.bytes } satisfies EndMarker);
    this.pack.finalize();
  }

  private addMarker(kind: 'begin' | 'deleted' | 'end', body: unknown): Promise<void> {
    const data = Buffer.from(JSON.stringify(body));
    return this.addEntry(markerHeader(kind, data.length), data);
  }

  /** Resolves once tar-stream has taken the entry (it waits while its buffer is full: that is the backpressure). */
  private addEntry(header: TarHeader, data?: Buffer): Promise<void> {
    const added = new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      const sink = data === undefined ? this.pack.entry(header, done) : this.pack.entry(header, data, done);
      sink.on('error', ignore);
    });
    added.catch(ignore); // when `stop` wins the race, the entry's own failure comes later and is not news
    return Promise.race([added, this.stopper.stop]);
  }

  private async addLargeFile(header: TarHeader, fd: number, abs: string): Promise<void> {
    const size = header.size ?? 0;
    const { stop } = this.stopper;
    const closed = () => new Error('tar entry closed');
    let settle!: (err?: Error | null) => void;
    const added = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    added.catch(ignore);
    let entry: ReturnType<tar.Pack['entry']>;
    try {
      entry = this.pack.entry(header, settle);
    } catch (err) {
      closeSync(fd); // the pack was destroyed meanwhile
      throw err;
    }
    entry.on('error', ignore);
    // autoClose: the stream closes fd once no read is pending, which we could not know from here.
    const input = createReadStream(abs, { fd, start: 0, end: size - 1, highWaterMark: CHUNK_BYTES, autoClose: true });
    try {
      let sent = 0;
      const send = async (chunk: Buffer) => {
        sent += chunk.length;
        this.stats.bytes += chunk.length;
        if (!entry.write(chunk)) await waitForEvent(entry, 'drain', stop, closed);
        this.options.onProgress?.(this.stats.bytes);
      };
      try {
        for await (const chunk of input as AsyncIterable<Buffer>) await send(chunk);
      } catch (err) {
        throw err instanceof FerryError || this.stopper.failure() !== undefined ? err : sourceError(abs, err);
      }
      // The file shrank since fstat: pad, keeping the archive valid; its new mtime gets it sent again later.
      while (sent < size) await send(Buffer.alloc(Math.min(CHUNK_BYTES, size - sent)));
      entry.end(undefined);
      await Promise.race([added, stop]);
    } catch (err) {
      entry.destroy(err instanceof Error ? err : undefined);
      throw err;
    } finally {
      if (!input.closed) {
        const inputClosed = new Promise<void>((resolve) => input.once('close', () => resolve()));
        input.destroy();
        await inputClosed;
      }
    }
  }

  // ---- preparing an entry (synchronous fs calls) ------------------------------------------------------------------

  private prepare(candidate: Candidate): Prepared {
    if (candidate.kind === 'skipped') {
      const { path, reason, kind } = candidate.skipped;
      const message =
        reason === 'special-file' ? `skipped ${kind} ${path}: device nodes, fifos and sockets are not copied` : `skipped ${path}: its name is not UTF-8`;
      return { kind: 'warning', event: { type: 'warning', message, reason, path } };
    }
    if (candidate.kind === 'path') {
      // An `only` path: reached one real directory at a time from the root, never through a symlink.
      const parent = openDirectoryBeneath(this.root, parentPath(candidate.path));
      if (parent === undefined) return { kind: 'vanished' };
      try {
        if (candidate.path === ROOT_PATH) return this.prepareEntry(ROOT_PATH, fstatSync(parent, { bigint: true }), fdPath(parent));
        const at = `${fdPath(parent)}/${basename(candidate.path)}`;
        let stat: BigIntStats;
        try {
          stat = lstatSync(at, { bigint: true });
        } catch (err) {
          if (isErrno(err, ...VANISHED_ERRNOS)) return { kind: 'vanished' };
          throw sourceError(absolutePath(this.root, candidate.path), err);
        }
        return this.prepareEntry(candidate.path, stat, at);
      } finally {
        closeSync(parent);
      }
    }
    return this.prepareEntry(candidate.path, candidate.stat, candidate.at ?? absolutePath(this.root, candidate.path), candidate.linkTarget);
  }

  /** `at` reaches the entry through its parent's open descriptor. */
  private prepareEntry(path: string, stat: BigIntStats, at: string, linkTarget?: string): Prepared {
    const abs = absolutePath(this.root, path);
    switch (entryTypeOf(stat)) {
      case 'dir':
        return { kind: 'entry', header: { ...metaHeader(path, metaOf(stat)), type: 'directory' } };
      case 'symlink':
        try {
          linkTarget ??= readlinkSync(at);
        } catch (err) {
          if (isErrno(err, ...VANISHED_ERRNOS, 'EINVAL')) return { kind: 'vanished' };
          throw sourceError(abs, err);
        }
        return { kind: 'entry', header: { ...metaHeader(path, metaOf(stat)), type: 'symlink', linkname: linkTarget } };
      case 'file':
        return this.prepareFile(path, abs, at);
      default:
        return this.prepare({ kind: 'skipped', skipped: { path, reason: 'special-file', kind: specialKind(stat) } });
    }
  }

  private prepareFile(path: string, abs: string, at: string): Prepared {
    let fd: number;
    try {
      fd = openSync(at, OPEN_FLAGS);
    } catch (err) {
      if (isErrno(err, ...OPEN_VANISHED_ERRNOS)) return { kind: 'vanished' };
      throw sourceError(abs, err);
    }
    let keepOpen = false;
    try {
      const stat = fstatSync(fd, { bigint: true });
      if (!stat.isFile()) return { kind: 'vanished' };
      // Renamed since the walk (or reached some other way): only send what is where it was listed.
      if (this.checkFdPaths && readlinkSync(`/proc/self/fd/${fd}`) !== abs) return { kind: 'vanished' };
      const size = Number(stat.size);
      const header: TarHeader = { ...metaHeader(path, metaOf(stat)), type: 'file', size };
      if (size > CHUNK_BYTES) {
        keepOpen = true;
        return { kind: 'entry', header, fd, abs };
      }
      return { kind: 'entry', header, data: readFully(fd, size) };
    } catch (err) {
      throw sourceError(abs, err);
    } finally {
      if (!keepOpen) closeSync(fd);
    }
  }

  // ---- into the writable ----------------------------------------------------------------------------------------

  private async pump(): Promise<void> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await this.write(data);
    };
    for await (const chunk of this.pack as AsyncIterable<Buffer>) {
      if (chunk.length >= COALESCE_BYTES) {
        await flush();
        await this.write(chunk);
        continue;
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= COALESCE_BYTES) await flush();
    }
    await flush();
    if (this.options.end === false) return;
    const finished = waitForEvent(this.writable, 'finish', this.stopper.stop, () => transportError('the transfer stream closed before it was flushed'));
    this.writable.end();
    await finished;
  }

  private async write(data: Buffer): Promise<void> {
    const { writable } = this;
    if (writable.destroyed || writable.writableEnded) throw transportError('the transfer stream was closed while sending');
    if (!writable.write(data)) {
      await waitForEvent(writable, 'drain', this.stopper.stop, () => transportError('the transfer stream closed while sending'));
    }
  }
}

function metaOf(stat: BigIntStats) {
  return { mode: Number(stat.mode), uid: Number(stat.uid), gid: Number(stat.gid), mtimeNs: stat.mtimeNs };
}

/** `size` bytes from the start of the file; zeros where it has become shorter. */
function readFully(fd: number, size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  let offset = 0;
  while (offset < size) {
    const bytesRead = readSync(fd, data, offset, size - offset, offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
  }
  data.fill(0, offset);
  return data;
}

function ignore(): void {}
