/**
 * unpackDir: writes a transfer stream (stream-format.ts), from any Readable, into a directory.
 *
 * Contract:
 * - Never writes outside `dir`: entries with absolute paths, '.' or '..' components are refused, and so is any entry
 *   whose parent path holds a symlink (a symlink in the archive or already in `dir`), before anything is written
 *   for it. Symlinks themselves may point anywhere (a rootfs holds /bin/sh -> busybox); they are never followed.
 * - An entry that replaces an existing one is written under a temporary name in its directory, then renamed over
 *   it: a reader sees the old file or the new one, never half of one. A new entry is created in place (O_EXCL,
 *   O_NOFOLLOW), saving a rename per file on a first copy. A directory in the way of a file or symlink (or the
 *   reverse) is removed first. Deletions sent by the source are applied before anything is written.
 * - Mode, owner (when running as root) and mtime are restored; directories' last, so writing their contents does not
 *   disturb them, and directories that only had entries replaced get their times back. The root `dir` keeps its own
 *   mode and owner (only its mtime comes from the archive).
 * - Success means the whole stream arrived: its end marker was seen, the counts agree, and `readable` ended.
 * - `readable` belongs to the caller. On failure unpackDir stops reading (the stream is left paused, not destroyed),
 *   removes the file it was writing, and leaves `dir` partially written: the caller closes the stream and removes
 *   `dir` (or sends everything again).
 * - Throws ERR_PRECHECK_BAD_INPUT (unsafe entry), ERR_AGENT_PROTOCOL (not a ferry stream, or another format),
 *   ERR_TRANSPORT_CLOSED (stream failed, truncated or corrupt), ERR_AGENT_FAILED (writing failed), ERR_ABORTED.
 *
 * Small entries are written with synchronous fs calls in bursts (event-loop-yield.ts says why); contents larger than
 * CHUNK_BYTES stream to disk asynchronously, one write in flight while the next megabyte arrives.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  realpathSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writev,
  writevSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { EventLoopYielder } from './event-loop-yield';
import { absolutePath, ancestorPaths, isSameOrBelow, parentPath, relativePathProblem, ROOT_PATH } from './relative-path';
import {
  CHUNK_BYTES,
  decodeMeta,
  markerKind,
  MAX_MARKER_BYTES,
  TRANSFER_FORMAT,
  type BeginMarker,
  type DecodedMeta,
  type EndMarker,
  type TarHeader,
} from './stream-format';
import { stopSignal } from './stream-waits';
import { abortError, asTransferError, extractError, isErrno, protocolError, transportError, unsafeEntry } from './transfer-errors';
import type { TransferEvent, TransferStats } from './transfer-types';

export interface UnpackOptions {
  signal?: AbortSignal;
  /** Bytes of file content written so far. */
  onProgress?: (bytesWritten: number) => void;
  /** Warnings: device nodes and fifos in the archive are skipped. */
  onEvent?: (event: TransferEvent) => void;
  /**
   * Mode of every directory unpackDir creates or updates, instead of the archive's (0o700 for CRIU image
   * directories). Also the mode of `dir` and of missing parents it creates. Default: the archive's modes, 0o755.
   */
  dirMode?: number;
  /** Mode of every file written, instead of the archive's (0o600 for CRIU images: a process's memory). */
  fileMode?: number;
}

/** An entry's data, as tar-stream's extract hands it over. */
type Entry = AsyncIterable<unknown>;

const DEFAULT_DIR_MODE = 0o755;
/** Write at most this many buffers in one writev (IOV_MAX is 1024). */
const MAX_WRITE_BUFFERS = 256;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const DIR_OPEN_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export async function unpackDir(readable: Readable, dir: string, options: UnpackOptions = {}): Promise<TransferStats> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const writer = DirWriter.open(dir, options);
  const yielder = new EventLoopYielder();
  const extract = tar.extract({ highWaterMark: CHUNK_BYTES });
  const { stop, fail, failure } = stopSignal();
  let inFlight: Promise<void> = Promise.resolve();
  let sourceEnded = false;

  const onDrain = () => {
    if (failure() === undefined) readable.resume();
  };
  const onData = (chunk: Buffer) => {
    if (!extract.write(chunk)) {
      readable.pause();
      extract.once('drain', onDrain);
    }
  };
  const onEnd = () => {
    sourceEnded = true;
    extract.end(undefined);
  };
  const onError = (err: Error) => stopAll(transportError('the transfer stream failed', err));
  const onClose = () => {
    if (!sourceEnded) stopAll(transportError('the transfer stream closed before it ended'));
  };
  const onAbort = () => stopAll(abortError(signal as AbortSignal));
  const detach = () => {
    readable.off('data', onData);
    readable.off('end', onEnd);
    readable.off('error', onError);
    readable.off('close', onClose);
    extract.off('drain', onDrain);
    signal?.removeEventListener('abort', onAbort);
  };
  function stopAll(err: unknown): void {
    if (!fail(err)) return;
    detach();
    readable.pause();
    extract.destroy(err instanceof Error ? err : undefined);
  }

  const finished = new Promise<void>((resolve) => extract.once('finish', resolve));
  extract.on('error', (err: Error) => stopAll(err));
  extract.on('entry', (header, stream, next) => {
    // tar-stream types pax as unknown; its extract sets it to the decoded records or null.
    inFlight = writer
      .entry(header as TarHeader, stream)
      .then(() => yielder.maybeYield())
      .then(
        () => next(),
        (err: unknown) => stopAll(err),
      );
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  readable.on('error', onError);
  readable.on('close', onClose);
  readable.on('end', onEnd);
  readable.on('data', onData);
  if (readable.readableEnded) onEnd();

  try {
    await Promise.race([finished, stop]);
    await inFlight;
    if (failure() !== undefined) throw failure();
    return writer.finish();
  } catch (err) {
    stopAll(err);
    await inFlight; // the entry being written removes its file first
    throw asTransferError(failure(), 'receiving the directory failed');
  } finally {
    detach();
  }
}

interface SavedTimes {
  atime: number;
  mtime: number;
}

/** Where an entry is being written: in place (a new entry) or under a temporary name (replacing one). */
interface Target {
  abs: string;
  inPlace: boolean;
}

/** The receiving side's state: what it checked, created, and must still set when the stream is complete. */
class DirWriter {
  private state: 'begin' | 'body' | 'ended' = 'begin';
  private readonly stats: TransferStats = { files: 0, bytes: 0 };
  /** Paths known to be real directories (not symlinks) inside root. */
  private readonly realDirs = new Set<string>([ROOT_PATH]);
  /** Directories created by this run: their previous times need no restoring. */
  private readonly createdDirs = new Set<string>();
  /** Directory metadata from the archive, applied last. */
  private readonly dirMeta = new Map<string, DecodedMeta>();
  /** Times of directories whose entries we changed without the archive saying anything about them. */
  private readonly savedTimes = new Map<string, SavedTimes>();
  private readonly asRoot = process.getuid?.() === 0;
  private tmpSeq = 0;

  private constructor(
    private readonly root: string,
    private readonly options: UnpackOptions,
  ) {}

  static open(dir: string, options: UnpackOptions): DirWriter {
    const mode = options.dirMode ?? DEFAULT_DIR_MODE;
    try {
      const created = mkdirSync(dir, { recursive: true, mode });
      if (created !== undefined) chmodSync(dir, mode); // mkdir's mode is filtered by the umask
      const writer = new DirWriter(realpathSync(dir), options);
      if (created !== undefined) writer.createdDirs.add(ROOT_PATH);
      return writer;
    } catch (err) {
      throw extractError(dir, err);
    }
  }

  // ---- entries --------------------------------------------------------------------------------------------------

  async entry(header: TarHeader, stream: Entry): Promise<void> {
    const kind = markerKind(header);
    if (this.state === 'begin') {
      if (kind !== 'begin') throw protocolError(`not a ferry transfer stream: it starts with ${JSON.stringify(header.name)}`);
      const begin = (await readJson(header, stream)) as Partial<BeginMarker>;
      if (begin.format !== TRANSFER_FORMAT) throw protocolError(`transfer stream format ${String(begin.format)}, this ferry reads format ${TRANSFER_FORMAT}`);
      this.state = 'body';
      return;
    }
    if (this.state === 'ended') throw protocolError(`entry ${JSON.stringify(header.name)} after the end of the transfer stream`);
    if (kind === 'deleted') return this.deleteAll(await readJson(header, stream));
    if (kind === 'end') return this.end((await readJson(header, stream)) as Partial<EndMarker>);
    if (kind !== undefined) throw protocolError(`unknown marker ${JSON.stringify(kind)} in the transfer stream`);

    const path = checkedPath(header.name);
    const meta = decodeMeta(header);
    switch (header.type) {
      case 'directory':
        return this.directory(path, meta);
      case 'file':
      case 'contiguous-file':
        return this.file(path, meta, header.size ?? 0, stream);
      case 'symlink':
        return this.symlink(path, meta, header.linkname ?? '');
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        this.options.onEvent?.({ type: 'warning', reason: 'special-file', path, message: `skipped ${header.type} ${path}: not extracted` });
        for await (const _ of stream) void _;
        return;
      }
      default:
        throw unsafeEntry(header.name, `unsupported entry type ${String(header.type)}`);
    }
  }

  private async directory(path: string, meta: DecodedMeta): Promise<void> {
    this.stats.files++;
    if (path !== ROOT_PATH) {
      this.ensureParents(path);
      this.saveTimes(parentPath(path));
      const abs = absolutePath(this.root, path);
      const made = this.fs(path, () => {
        try {
          mkdirSync(abs, 0o700); // opened up in finish(), once its contents are written
          return true;
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
          if (lstatSync(abs).isDirectory()) return false;
          unlinkSync(abs); // a file or symlink in the way
          mkdirSync(abs, 0o700);
          return true;
        }
      });
      if (made) this.createdDirs.add(path);
      this.realDirs.add(path);
    }
    this.dirMeta.set(path, meta);
  }

  private async file(path: string, meta: DecodedMeta, size: number, stream: Entry): Promise<void> {
    if (path === ROOT_PATH) throw unsafeEntry(path, 'the root must be a directory');
    this.stats.files++;
    // Small contents are read whole before anything is created: a stream cut short leaves nothing behind.
    const small = size <= CHUNK_BYTES ? await readAll(stream) : undefined;
    this.ensureParents(path);
    this.saveTimes(parentPath(path));
    const { target, fd } = this.fs(path, () => this.create(path, (abs) => openSync(abs, CREATE_FLAGS, 0o600)));
    let open = true;
    try {
      if (small !== undefined) {
        this.fs(path, () => writeAllSync(fd, small));
        this.progress(size);
      } else {
        await this.writeStream(path, fd, stream);
      }
      this.fs(path, () => {
        if (this.asRoot) fchownSync(fd, meta.uid, meta.gid);
        fchmodSync(fd, this.options.fileMode ?? meta.mode); // after fchown, which clears setuid and setgid
        futimesSync(fd, meta.mtimeSeconds, meta.mtimeSeconds);
        open = false;
        closeSync(fd);
      });
      if (!target.inPlace) await this.replaceWith(target.abs, path);
    } catch (err) {
      if (open) closeSync(fd);
      tryUnlink(target.abs);
      throw err;
    }
  }

  private async symlink(path: string, meta: DecodedMeta, linkTarget: string): Promise<void> {
    if (path === ROOT_PATH) throw unsafeEntry(path, 'the root must be a directory');
    if (linkTarget === '' || linkTarget.includes('\0')) throw unsafeEntry(path, 'symlink without a valid target');
    this.stats.files++;
    this.ensureParents(path);
    this.saveTimes(parentPath(path));
    const { target } = this.fs(path, () => this.create(path, (abs) => symlinkSync(linkTarget, abs)));
    try {
      this.fs(path, () => {
        if (this.asRoot) lchownSync(target.abs, meta.uid, meta.gid);
        lutimesSync(target.abs, meta.mtimeSeconds, meta.mtimeSeconds);
      });
      if (!target.inPlace) await this.replaceWith(target.abs, path);
    } catch (err) {
      tryUnlink(target.abs);
      throw err;
    }
  }

  private async deleteAll(list: unknown): Promise<void> {
    if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string')) throw protocolError('malformed deletion list in the transfer stream');
    for (const name of list) {
      const path = checkedPath(name);
      if (path === ROOT_PATH) throw unsafeEntry(name, 'the root cannot be deleted');
      if (!this.parentsExist(path)) continue;
      this.saveTimes(parentPath(path));
      await this.removeTree(path);
    }
  }

  private end(marker: Partial<EndMarker>): void {
    if (marker.files !== this.stats.files || marker.bytes !== this.stats.bytes) {
      throw transportError(
        `the transfer stream is inconsistent: the sender sent ${String(marker.files)} entries (${String(marker.bytes)} bytes), ` +
          `${this.stats.files} (${this.stats.bytes} bytes) arrived`,
      );
    }
    this.state = 'ended';
  }

  /** Directory metadata last: writing into a directory changes its mtime, and a 0o555 one could not be written. */
  finish(): TransferStats {
    if (this.state !== 'ended') throw transportError('the transfer stream ended before its end marker');
    for (const [path, meta] of this.dirMeta) {
      this.withDir(path, (fd) => {
        // The root is the receiver's directory, not the sender's: its owner and mode stay (a bundle sent as 0777 or
        // owned by some uid must not open the migration directory to other users); its time is the archive's.
        const root = path === ROOT_PATH;
        if (this.asRoot && !root) fchownSync(fd, meta.uid, meta.gid);
        if (this.options.dirMode !== undefined || !root) fchmodSync(fd, this.options.dirMode ?? meta.mode);
        futimesSync(fd, meta.mtimeSeconds, meta.mtimeSeconds);
      });
    }
    for (const [path, times] of this.savedTimes) {
      if (!this.dirMeta.has(path)) this.withDir(path, (fd) => futimesSync(fd, times.atime, times.mtime));
    }
    return { ...this.stats };
  }

  // ---- helpers ----------------------------------------------------------------------------------------------------

  /** Checks (and creates when missing) every parent of `path`: each must be a real directory, never a symlink. */
  private ensureParents(path: string): void {
    for (const dir of ancestorPaths(path)) {
      if (this.realDirs.has(dir)) continue;
      const abs = absolutePath(this.root, dir);
      const st = this.fs(dir, () => lstatSync(abs, { throwIfNoEntry: false }));
      if (st === undefined) {
        this.saveTimes(parentPath(dir));
        const mode = this.options.dirMode ?? DEFAULT_DIR_MODE;
        this.fs(dir, () => {
          mkdirSync(abs, mode);
          chmodSync(abs, mode);
        });
        this.createdDirs.add(dir);
      } else if (st.isSymbolicLink()) {
        throw unsafeEntry(path, `its parent ${dir} is a symlink`);
      } else if (!st.isDirectory()) {
        throw unsafeEntry(path, `its parent ${dir} is not a directory`);
      }
      this.realDirs.add(dir);
    }
  }

  /** Like ensureParents without creating anything: false when a parent is missing. */
  private parentsExist(path: string): boolean {
    for (const dir of ancestorPaths(path)) {
      if (this.realDirs.has(dir)) continue;
      const st = this.fs(dir, () => lstatSync(absolutePath(this.root, dir), { throwIfNoEntry: false }));
      if (st === undefined) return false;
      if (st.isSymbolicLink()) throw unsafeEntry(path, `its parent ${dir} is a symlink`);
      if (!st.isDirectory()) return false;
      this.realDirs.add(dir);
    }
    return true;
  }

  /** Remembers a directory's times before we first change its entries, so finish() can put them back. */
  private saveTimes(dir: string): void {
    if (this.createdDirs.has(dir) || this.dirMeta.has(dir) || this.savedTimes.has(dir)) return;
    const st = this.fs(dir, () => lstatSync(absolutePath(this.root, dir), { bigint: true }));
    this.savedTimes.set(dir, { atime: Number(st.atimeNs) / 1e9, mtime: Number(st.mtimeNs) / 1e9 });
  }

  /**
   * Creates the entry for `path` with `make` (which must fail with EEXIST when the name is taken, as O_EXCL and
   * symlink(2) do): in place when nothing is there, else under a .ferry-tmp-* name in the same directory.
   */
  private create<T>(path: string, make: (abs: string) => T): { target: Target; fd: T } {
    const abs = absolutePath(this.root, path);
    try {
      return { target: { abs, inPlace: true }, fd: make(abs) };
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const dir = absolutePath(this.root, parentPath(path));
    for (;;) {
      const tmp = `${dir}/.ferry-tmp-${process.pid}-${++this.tmpSeq}`;
      try {
        return { target: { abs: tmp, inPlace: false }, fd: make(tmp) };
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
  }

  /** rename(2) over whatever is at `path`; a directory in the way is removed first (the entry changed type). */
  private async replaceWith(tmp: string, path: string): Promise<void> {
    const abs = absolutePath(this.root, path);
    try {
      renameSync(tmp, abs);
    } catch (err) {
      if (!isErrno(err, 'EISDIR', 'ENOTEMPTY', 'EEXIST')) throw extractError(path, err);
      await this.removeTree(path);
      this.fs(path, () => renameSync(tmp, abs));
    }
  }

  /** Removes `path` (recursively, never following symlinks) and drops what we knew about it and below. */
  private async removeTree(path: string): Promise<void> {
    try {
      await rm(absolutePath(this.root, path), { recursive: true, force: true });
    } catch (err) {
      throw extractError(path, err);
    }
    for (const set of [this.realDirs, this.createdDirs]) for (const p of set) if (p !== ROOT_PATH && isSameOrBelow(p, path)) set.delete(p);
    for (const map of [this.dirMeta, this.savedTimes]) for (const p of map.keys()) if (p !== ROOT_PATH && isSameOrBelow(p, path)) map.delete(p);
  }

  /** Runs fn on the directory opened without following a symlink (it may have been replaced since). */
  private withDir(path: string, fn: (fd: number) => void): void {
    this.fs(path, () => {
      const fd = openSync(absolutePath(this.root, path), DIR_OPEN_FLAGS);
      try {
        fn(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** A large file's contents, written as they arrive with one write in flight. */
  private async writeStream(path: string, fd: number, stream: Entry): Promise<void> {
    let position = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let writing: Promise<void> | undefined;
    const flush = (): Promise<void> => {
      const buffers = batch;
      const bytes = batchBytes;
      const at = position;
      batch = [];
      batchBytes = 0;
      position += bytes;
      return writeAllAt(fd, buffers, at).then(
        () => this.progress(bytes),
        (err: unknown) => Promise.reject(extractError(path, err)),
      );
    };
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= CHUNK_BYTES || batch.length >= MAX_WRITE_BUFFERS) {
          await writing;
          writing = flush();
          writing.catch(() => undefined);
        }
      }
      await writing;
      writing = undefined;
      if (batchBytes > 0) await flush();
    } finally {
      await writing?.catch(() => undefined); // no write may be pending when the caller closes fd
    }
  }

  private progress(bytes: number): void {
    this.stats.bytes += bytes;
    this.options.onProgress?.(this.stats.bytes);
  }

  /** Runs a synchronous file-system step for `path`, turning its errno errors into ERR_AGENT_FAILED. */
  private fs<T>(path: string, step: () => T): T {
    try {
      return step();
    } catch (err) {
      throw extractError(path, err);
    }
  }
}

function checkedPath(name: string): string {
  const path = name.length > 1 && name.endsWith('/') ? name.slice(0, -1) : name;
  const problem = relativePathProblem(path);
  if (problem !== undefined) throw unsafeEntry(name, problem);
  return path;
}

async function readAll(stream: Entry): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return chunks;
}

async function readJson(header: TarHeader, stream: Entry): Promise<unknown> {
  if ((header.size ?? 0) > MAX_MARKER_BYTES) throw protocolError(`transfer stream marker of ${String(header.size)} bytes`);
  try {
    return JSON.parse(Buffer.concat(await readAll(stream)).toString('utf8')) as unknown;
  } catch (err) {
    if (err instanceof SyntaxError) throw protocolError('malformed marker in the transfer stream');
    throw err;
  }
}

function tryUnlink(abs: string): void {
  try {
    unlinkSync(abs);
  } catch {
    /* already gone */
  }
}

/** Buffers that remain after `written` bytes of them went out. */
function remainder(buffers: Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (written >= buffer.length) written -= buffer.length;
    else {
      rest.push(written > 0 ? buffer.subarray(written) : buffer);
      written = 0;
    }
  }
  return rest;
}

function writeAllSync(fd: number, buffers: Buffer[]): void {
  let position = 0;
  for (let pending = buffers; pending.length > 0; ) {
    const written = writevSync(fd, pending.slice(0, MAX_WRITE_BUFFERS), position);
    position += written;
    pending = remainder(pending, written);
  }
}

async function writeAllAt(fd: number, buffers: Buffer[], position: number): Promise<void> {
  for (let pending = buffers; pending.length > 0; ) {
    const written = await new Promise<number>((resolve, reject) =>
      writev(fd, pending, position, (err, bytesWritten) => (err ? reject(err) : resolve(bytesWritten))),
    );
    position += written;
    pending = remainder(pending, written);
  }
}
