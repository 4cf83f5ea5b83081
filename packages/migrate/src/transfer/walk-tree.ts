/**
 * The one walk of a directory tree, shared by snapshotDir and packDir: pre-order (the root, then each directory
 * before its contents), names sorted, symlinks never followed. Entries that vanish while we look are left out:
 * a later snapshot sees them gone, and diffSnapshots reports them. Synchronous fs calls in bursts
 * (event-loop-yield.ts explains why).
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { EventLoopYielder } from './event-loop-yield';
import { absolutePath, ROOT_PATH } from './relative-path';
import { isErrno, sourceError } from './transfer-errors';
import type { SkippedEntry, SnapshotEntryType } from './transfer-types';

export type WalkItem =
  | { kind: 'entry'; path: string; type: SnapshotEntryType; stat: BigIntStats; linkTarget?: string }
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

/** `root` must be the real path (no symlinks) of a directory. */
export async function* walkTree(root: string, yielder = new EventLoopYielder()): AsyncGenerator<WalkItem> {
  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(root, { bigint: true });
  } catch (err) {
    throw sourceError(root, err);
  }
  if (!rootStat.isDirectory()) throw sourceError(root, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
  yield { kind: 'entry', path: ROOT_PATH, type: 'dir', stat: rootStat };
  yield* walkChildren(root, ROOT_PATH, yielder);
}

async function* walkChildren(root: string, dir: string, yielder: EventLoopYielder): AsyncGenerator<WalkItem> {
  await yielder.maybeYield();
  const dirAbs = absolutePath(root, dir);
  let raw: Buffer[];
  try {
    raw = readdirSync(dirAbs, { encoding: 'buffer' });
  } catch (err) {
    if (isErrno(err, ...VANISHED_ERRNOS)) return;
    throw sourceError(dirAbs, err);
  }
  const children: { path: string; stat: BigIntStats; linkTarget?: string }[] = [];
  const skipped: SkippedEntry[] = [];
  for (const bytes of raw) {
    await yielder.maybeYield(); // a directory may hold 100k entries
    const name = bytes.toString('utf8');
    const path = dir === ROOT_PATH ? name : `${dir}/${name}`;
    // Linux names are bytes, ours are strings: a name that is not UTF-8 cannot be named again, so it is skipped.
    if (!Buffer.from(name).equals(bytes)) {
      let kind = 'unknown';
      try {
        const stat = lstatSync(Buffer.concat([Buffer.from(`${dirAbs}/`), bytes]), { bigint: true });
        kind = entryTypeOf(stat) ?? specialKind(stat);
      } catch {
        /* gone already */
      }
      skipped.push({ path, reason: 'non-utf8-name', kind });
      continue;
    }
    const abs = `${dirAbs}/${name}`;
    try {
      const stat = lstatSync(abs, { bigint: true });
      children.push(stat.isSymbolicLink() ? { path, stat, linkTarget: readlinkSync(abs) } : { path, stat });
    } catch (err) {
      if (isErrno(err, ...VANISHED_ERRNOS, 'EINVAL')) continue; // EINVAL: the symlink was replaced since lstat
      throw sourceError(abs, err);
    }
  }
  for (const s of skipped.sort((a, b) => compare(a.path, b.path))) yield { kind: 'skipped', skipped: s };
  for (const child of children.sort((a, b) => compare(a.path, b.path))) {
    const type = entryTypeOf(child.stat);
    if (type === undefined) {
      yield { kind: 'skipped', skipped: { path: child.path, reason: 'special-file', kind: specialKind(child.stat) } };
      continue;
    }
    yield { kind: 'entry', path: child.path, type, stat: child.stat, ...(child.linkTarget === undefined ? {} : { linkTarget: child.linkTarget }) };
    if (type === 'dir') yield* walkChildren(root, child.path, yielder);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
