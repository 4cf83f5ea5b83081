/**
 * The outer tar of a checkpoint archive: written with tar-stream, read with tar-stream after the compression Podman
 * chose (none, gzip, or zstd: Podman 4.3's default, decompressed by the `zstd` tool because Node 20's zlib has none).
 *
 * Reading trusts nothing in the archive: only the names archive-layout.ts lists are written (top-level files, and
 * regular files one level below checkpoint/ and volumes/), always as regular files created with O_EXCL|O_NOFOLLOW
 * in a directory the caller made fresh; a symlink, hard link or device in those places, an absolute name or a `..`
 * is refused before anything of it is written. Other members (Podman's ctr.log, artifacts/, ...) are skipped and
 * reported, so the caller can say what was not carried.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, createReadStream, createWriteStream, mkdirSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { FerryError } from '../model/ferry-error';
import { TOP_LEVEL_DIRS, TOP_LEVEL_FILES } from './archive-layout';

export interface ArchiveMember {
  /** Name inside the archive, e.g. "config.dump" or "checkpoint/core-1.img". */
  name: string;
  /** A file to copy, or the content itself. */
  path?: string;
  content?: string | Buffer;
  mode?: number;
}

/**
 * Writes `members` as an uncompressed tar to `file` (0600): into a temporary name beside it first, renamed over
 * `file` at the end, so a reader never sees half an archive and a failure leaves no file behind. Directories are
 * implied by member names and written 0700 before their first member.
 */
export async function writeArchive(file: string, members: readonly ArchiveMember[]): Promise<{ bytes: number }> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const pack = tar.pack();
  const out = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
  const written = pipeline(pack, out);
  try {
    const dirs = new Set<string>();
    const now = new Date();
    for (const member of members) {
      const parent = member.name.includes('/') ? member.name.slice(0, member.name.lastIndexOf('/')) : undefined;
      if (parent && !dirs.has(parent)) {
        dirs.add(parent);
        await addEntry(pack, { name: `${parent}/`, type: 'directory', mode: 0o700, mtime: now });
      }
      if (member.path !== undefined) {
        const st = statSync(member.path);
        if (!st.isFile()) throw new Error(`${member.path} is not a regular file`);
        const sink = pack.entry({ name: member.name, size: st.size, mode: member.mode ?? 0o600, mtime: st.mtime });
        await pipeline(createReadStream(member.path), sink);
      } else {
        await addEntry(pack, { name: member.name, mode: member.mode ?? 0o600, mtime: now }, Buffer.from(member.content ?? ''));
      }
    }
    pack.finalize();
    await written;
    renameSync(temp, file);
    return { bytes: statSync(file).size };
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    rmSync(temp, { force: true });
    throw new FerryError('ERR_RUNTIME_FAILED', `writing the checkpoint archive ${file} failed: ${(err as Error).message}`, {
      hint: 'Check the space and permissions of the target directory.',
      cause: err,
    });
  }
}

function addEntry(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (data === undefined) pack.entry(header, done);
    else pack.entry(header, data, done);
  });
}

export type Compression = 'none' | 'gzip' | 'zstd';

/** The compression of a file from its first bytes (the magic numbers of gzip and zstd frames). */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Why a member name cannot be written, or undefined when it is one ferry reads; 'skip' for members it ignores. */
export function memberVerdict(name: string, type: string): 'file' | 'dir' | 'skip' | { refuse: string } {
  const clean = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (clean === '' || clean === '.') return type === 'directory' ? 'skip' : { refuse: 'an entry without a name' };
  if (clean.startsWith('/')) return { refuse: 'an absolute path' };
  const parts = clean.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === '')) return { refuse: 'a path with "." or ".." components' };
  const [top, ...rest] = parts;
  if (rest.length === 0) {
    if (TOP_LEVEL_DIRS.includes(top!)) return type === 'directory' ? 'dir' : { refuse: `${top} is not a directory` };
    if (!TOP_LEVEL_FILES.includes(top!)) return 'skip';
    return type === 'file' ? 'file' : { refuse: `${type} where a regular file belongs` };
  }
  if (!TOP_LEVEL_DIRS.includes(top!)) return 'skip';
  if (rest.length > 1) return { refuse: `a nested directory inside ${top}/` };
  return type === 'file' ? 'file' : { refuse: `${type} inside ${top}/ (only regular files belong there)` };
}

export interface ReadArchiveResult {
  compression: Compression;
  /** Members written, by name ("checkpoint/core-1.img"). */
  files: string[];
  /** Members ignored (not part of what ferry restores). */
  skipped: string[];
  bytes: number;
}

/**
 * Unpacks the members ferry reads from the archive `file` into `dest`, which the caller created empty (0700).
 * Throws ERR_IMAGE_NOT_FOUND (unreadable file), ERR_IMAGE_CORRUPT (not a tar, truncated, undecodable),
 * ERR_PRECHECK_BAD_INPUT (a member that would write outside its place). On failure `dest` is partially written:
 * the caller removes it.
 */
export async function readArchive(file: string, dest: string, tools: { zstdPath: string }): Promise<ReadArchiveResult> {
  let head: Buffer;
  try {
    const fd = openSync(file, 'r');
    try {
      head = Buffer.alloc(4);
      head = head.subarray(0, readSync(fd, head, 0, 4, 0));
    } finally {
      closeSync(fd);
    }
    if (!statSync(file).isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `cannot read the checkpoint archive ${file}: ${(err as Error).message}`, {
      hint: 'Name a file written by `podman container checkpoint --export` or `ferry checkpoint --export`.',
      cause: err,
    });
  }
  const compression = detectCompression(head);
  const result: ReadArchiveResult = { compression, files: [], skipped: [], bytes: 0 };
  const { source, done } = openDecompressed(file, compression, tools.zstdPath);
  const extract = tar.extract();
  const fed = pipeline(source, extract).catch((err: unknown) => {
    throw corrupt(file, err);
  });
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const verdict = memberVerdict(header.name, header.type ?? 'file');
      if (typeof verdict === 'object') {
        throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the checkpoint archive ${file} holds ${verdict.refuse}: ${JSON.stringify(header.name)}`, {
          hint: 'Only archives with the checkpointctl layout are read; this one was not written by Podman or ferry, or was altered.',
          details: { member: header.name, type: header.type },
        });
      }
      const name = header.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
      if (verdict === 'skip') {
        if (name !== '' && name !== '.') result.skipped.push(name);
        entry.resume();
        continue;
      }
      const target = join(dest, name);
      if (verdict === 'dir') {
        mkdirSync(target, { mode: 0o700 });
        entry.resume();
        continue;
      }
      const parent = name.includes('/') ? join(dest, name.slice(0, name.indexOf('/'))) : undefined;
      if (parent) mkdirSync(parent, { recursive: true, mode: 0o700 });
      result.bytes += await writeMember(target, entry as unknown as Readable, file, name);
      result.files.push(name);
    }
    await fed;
    await done;
  } catch (err) {
    source.destroy();
    extract.destroy();
    await fed.catch(() => undefined);
    await done.catch(() => undefined);
    throw err instanceof FerryError ? err : corrupt(file, err);
  }
  return result;
}

async function writeMember(target: string, entry: Readable, file: string, name: string): Promise<number> {
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the checkpoint archive ${file} holds ${name} twice, or a member in its way`, {
      hint: 'Check the archive with `tar tvf`.',
      cause: err,
    });
  }
  let bytes = 0;
  const out = createWriteStream('', { fd, autoClose: true });
  entry.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  await pipeline(entry, out);
  return bytes;
}

/** The archive's bytes as a tar stream, and a promise that rejects when the decompressor fails. */
function openDecompressed(file: string, compression: Compression, zstdPath: string): { source: Readable; done: Promise<void> } {
  if (compression === 'gzip') return { source: createReadStream(file).pipe(createGunzip()), done: Promise.resolve() };
  if (compression === 'none') return { source: createReadStream(file), done: Promise.resolve() };
  const child = spawn(zstdPath, ['-d', '-c', '-q', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(spawnFailure(zstdPath, err)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else if (signal === 'SIGPIPE' || signal === 'SIGTERM') resolve(); // we stopped reading: the real error is ours
      else reject(corrupt(file, new Error(`zstd exited with ${code ?? signal}: ${stderr.trim()}`)));
    });
  });
  // Keep a rejection before anyone awaits from becoming unhandled.
  done.catch(() => undefined);
  const source = child.stdout;
  const stop = source.destroy.bind(source);
  source.destroy = (error?: Error) => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return stop(error);
  };
  return { source, done };
}

function spawnFailure(tool: string, err: unknown): FerryError {
  return new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot run ${tool}: ${(err as Error).message}`, {
    hint: 'Install zstd (`apt-get install zstd`): Podman compresses exported checkpoints with it by default.',
    cause: err,
  });
}

function corrupt(file: string, err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  return new FerryError('ERR_IMAGE_CORRUPT', `${file} is not a readable checkpoint archive: ${(err as Error).message}`, {
    hint: 'Export it again (`podman container checkpoint --export FILE`); only uncompressed, gzip and zstd tars are read.',
    cause: err,
  });
}
