/**
 * The one walk of a directory tree, shared by snapshotDir and packDir: pre-order (the root, then each directory
 * before its contents), names sorted, symlinks never followed. Entries that vanish while we look are left out:
 * a later snapshot sees them gone, and diffSnapshots reports them. Synchronous fs calls in bursts
 * (event-loop-yield.ts explains why).
 *
 * The tree belongs to a running container, which may swap a directory for a symlink to a host directory while we
 * walk. So the walk goes by file descriptor, never by path: each directory is opened (O_DIRECTORY|O_NOFOLLOW)
 * through its parent's descriptor, checked to be the very directory that was listed (device and inode), and its
 * entries are read and stat'ed through `/proc/self/fd/N/NAME`, which resolves inside the opened directory whatever
 * happens to the path meanwhile. A directory replaced since it was listed is left out, like a vanished one.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { EventLoopYielder } from './event-loop-yield';
import { absolutePath, ROOT_PATH } from './relative-path';
import { isErrno, sourceError } from './transfer-errors';
import type { SkippedEntry, SnapshotEntryType } from './transfer-types';

export type WalkItem =
  /**
   * `at` reaches the entry through its parent's open descriptor (`/proc/self/fd/N/NAME`): open it rather than the
   * path, with O_NOFOLLOW. Valid only until the walk goes on.
   */
  | { kind: 'entry'; path: string; type: SnapshotEntryType; stat: BigIntStats; linkTarget?: string; at?: string }
  | { kind: 'skipped'; skipped: SkippedEntry };

/** Errors that mean "it is not there any more" (or a parent changed type under us). */
export const VANISHED_ERRNOS = ['ENOENT', 'ENOTDIR'] as const;

export function entryTypeOf(stat: BigIntStats): SnapshotEntryType | undefined {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  return undefined;
}

export function specialKind(stat: BigIntStats): string {
  if (stat.isCharacterDevice()) return 'character-device';
  if (stat.isBlockDevice()) return 'block-device';
  if (stat.isFIFO()) return 'fifo';
  if (stat.isSocket()) return 'socket';
  return 'unknown';
}

/** O_NONBLOCK: a directory swapped for a fifo must not hang the open (O_DIRECTORY refuses it anyway). */
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The path through which the kernel reaches the directory open as `fd`, whatever its name is now. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Opens `path` as a directory without following a link; undefined when it is gone or not a real directory. */
function openDirectory(path: string, reportAs: string): number | undefined {
  try {
    return openSync(path, DIR_FLAGS);
  } catch (err) {
    if (isErrno(err, ...VANISHED_ERRNOS, 'ELOOP')) return undefined;
    throw sourceError(reportAs, err);
  }
}

/**
 * Opens `name` (a path through an open directory, or the root) as a directory, only if it is still the directory
 * `expected` describes; undefined when it vanished or was replaced (by a symlink, a file, another directory).
 */
export function openDirectoryAsListed(name: string, expected: BigIntStats): number | undefined {
  const fd = openDirectory(name, name);
  if (fd === undefined) return undefined;
  const stat = fstatSync(fd, { bigint: true });
  if (stat.dev !== expected.dev || stat.ino !== expected.ino) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

/**
 * Opens directory `dir` (a canonical relative path, '.' for the root) of the tree at `root` one component at a time,
 * each with O_NOFOLLOW through the one before: undefined when a component is missing or not a real directory.
 */
export function openDirectoryBeneath(root: string, dir: string): number | undefined {
  let fd = openDirectory(root, root);
  if (fd === undefined || dir === ROOT_PATH) return fd;
  for (const part of dir.split('/')) {
    let next: number | undefined;
    try {
      next = openDirectory(`${fdPath(fd)}/${part}`, absolutePath(root, dir));
    } finally {
      closeSync(fd);
    }
    if (next === undefined) return undefined;
    fd = next;
  }
  return fd;
}

/** `root` must be the real path (no symlinks) of a directory. */
export async function* walkTree(root: string, yielder = new EventLoopYielder()): AsyncGenerator<WalkItem> {
  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(root, { bigint: true });
  } catch (err) {
    throw sourceError(root, err);
  }
  if (!rootStat.isDirectory()) throw sourceError(root, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
  const fd = openDirectoryAsListed(root, rootStat);
  if (fd === undefined) throw sourceError(root, Object.assign(new Error('replaced while being opened'), { code: 'ENOENT' }));
  try {
    yield { kind: 'entry', path: ROOT_PATH, type: 'dir', stat: rootStat };
    yield* walkChildren(root, fd, ROOT_PATH, yielder);
  } finally {
    closeSync(fd);
  }
}

async function* walkChildren(root: string, dirFd: number, dir: string, yielder: EventLoopYielder): AsyncGenerator<WalkItem> {
  await yielder.maybeYield();
  const dirAt = fdPath(dirFd);
  let raw: Buffer[];
  try {
    raw = readdirSync(dirAt, { encoding: 'buffer' });
  } catch (err) {
    if (isErrno(err, ...VANISHED_ERRNOS)) return;
    throw sourceError(absolutePath(root, dir), err);
  }
  const children: { path: string; at: string; stat: BigIntStats; linkTarget?: string }[] = [];
  const skipped: SkippedEntry[] = [];
  for (const bytes of raw) {
    await yielder.maybeYield(); // a directory may hold 100k entries
    const name = bytes.toString('utf8');
    const path = dir === ROOT_PATH ? name : `${dir}/${name}`;
    // Linux names are bytes, ours are strings: a name that is not UTF-8 cannot be named again, so it is skipped.
    if (!Buffer.from(name).equals(bytes)) {
      let kind = 'unknown';
      try {
        const stat = lstatSync(Buffer.concat([Buffer.from(`${dirAt}/`), bytes]), { bigint: true });
        kind = entryTypeOf(stat) ?? specialKind(stat);
      } catch {
        /* gone already */
      }
      skipped.push({ path, reason: 'non-utf8-name', kind });
      continue;
    }
    const at = `${dirAt}/${name}`;
    try {
      const stat = lstatSync(at, { bigint: true });
      children.push(stat.isSymbolicLink() ? { path, at, stat, linkTarget: readlinkSync(at) } : { path, at, stat });
    } catch (err) {
      if (isErrno(err, ...VANISHED_ERRNOS, 'EINVAL')) continue; // EINVAL: the symlink was replaced since lstat
      throw sourceError(absolutePath(root, path), err);
    }
  }
  for (const s of skipped.sort((a, b) => compare(a.path, b.path))) yield { kind: 'skipped', skipped: s };
  for (const child of children.sort((a, b) => compare(a.path, b.path))) {
    const type = entryTypeOf(child.stat);
    if (type === undefined) {
      yield { kind: 'skipped', skipped: { path: child.path, reason: 'special-file', kind: specialKind(child.stat) } };
      continue;
    }
    yield { kind: 'entry', path: child.path, type, stat: child.stat, at: child.at, ...(child.linkTarget === undefined ? {} : { linkTarget: child.linkTarget }) };
    if (type !== 'dir') continue;
    const childFd = openDirectoryAsListed(child.at, child.stat);
    if (childFd === undefined) continue; // replaced since it was listed: a later snapshot sees what is there now
    try {
      yield* walkChildren(root, childFd, child.path, yielder);
    } finally {
      closeSync(childFd);
    }
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
