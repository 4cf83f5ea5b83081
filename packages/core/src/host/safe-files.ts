/**
 * Reading and rewriting files that arrived from elsewhere (a migrated bundle, a replica) without following a
 * symlink planted in their place: a bundle whose config.json points at another container's config must not make
 * root rewrite that one. Reads open with O_NOFOLLOW; rewrites go to a temporary file in the same directory and are
 * renamed over the old name, which replaces a link instead of writing through it.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { FerryError } from '../model/ferry-error';

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

function unsafe(path: string, why: string): FerryError {
  return new FerryError('ERR_PRECHECK_UNSAFE_PATH', `${path} ${why}; ferry does not follow it`, {
    hint: 'Something replaced a file ferry wrote or received with a link or a special file. Find out what did, remove it, and retry.',
    details: { path },
  });
}

/** The text of a regular file; undefined when it does not exist; ERR_PRECHECK_UNSAFE_PATH for a symlink or special file. */
export function readFileNoFollow(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw unsafe(path, 'is a symlink');
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) throw unsafe(path, 'is not a regular file');
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Throws ERR_PRECHECK_UNSAFE_PATH unless `dir` is a directory itself (not a link to one). */
export function assertRealDirectory(dir: string): void {
  const stat = lstatSync(dir);
  if (stat.isSymbolicLink()) throw unsafe(dir, 'is a symlink');
  if (!stat.isDirectory()) throw unsafe(dir, 'is not a directory');
}

/**
 * Replaces `path` with `text` atomically: a new file next to it (same directory, so the rename cannot cross
 * filesystems or leave it), then rename. The new file takes the old one's mode, or `mode` when there was none.
 * The directory must be a real directory and the old file, if any, a regular file.
 */
export function replaceFileNoFollow(path: string, text: string, mode = 0o600): void {
  const dir = dirname(path);
  assertRealDirectory(dir);
  let keepMode = mode;
  try {
    const old = lstatSync(path);
    if (old.isSymbolicLink()) throw unsafe(path, 'is a symlink');
    if (!old.isFile()) throw unsafe(path, 'is not a regular file');
    keepMode = old.mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const temp = join(dir, `.${basename(path)}.ferry-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, keepMode);
  let open = true;
  try {
    fchmodSync(fd, keepMode); // exactly, whatever the umask
    const data = Buffer.from(text, 'utf8');
    for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset);
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(temp, path);
  } catch (err) {
    if (open) closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Creates `dir` (and missing parents) and makes it 0700 through a descriptor opened with O_NOFOLLOW: a directory
 * that is a symlink is refused (ERR_PRECHECK_UNSAFE_PATH), never chmod'ed or written through. Returns `dir`.
 */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw unsafe(dir, 'is a symlink');
    if (code === 'ENOTDIR') throw unsafe(dir, 'is not a directory');
    throw err;
  }
  try {
    fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
  return dir;
}

/**
 * Checks a directory the user named for new files (checkpoint --dir): not empty text, and, when it exists, a real
 * directory with nothing in it, so that an earlier checkpoint is never mixed with or overwritten by a new one and a
 * link planted where the directory should be is not followed. `allowExisting` (the command's flag, named in the
 * hint) accepts a non-empty directory and resolves a symlink to where it points. Returns the absolute path to use.
 */
export function checkNewDirectory(path: string, option: string, allowFlag: string, allowExisting = false): string {
  if (path.trim() === '') {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${option} is empty`, { hint: `Name a new directory, e.g. ${option} /var/lib/ferry/checkpoints/web-1.` });
  }
  let abs = resolve(path);
  let stat;
  try {
    stat = lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return abs;
    throw err;
  }
  if (stat.isSymbolicLink()) {
    if (!allowExisting) {
      throw new FerryError('ERR_PRECHECK_UNSAFE_PATH', `${option} ${abs} is a symlink; ferry does not follow it`, {
        hint: `Name the real directory, or pass ${allowFlag} to use the directory the link points at.`,
        details: { path: abs },
      });
    }
    abs = realpathSync(abs);
    stat = lstatSync(abs);
  }
  if (!stat.isDirectory()) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${option} ${abs} exists and is not a directory`, { hint: 'Name a new directory.' });
  }
  if (!allowExisting && readdirSync(abs).length > 0) {
    throw new FerryError('ERR_PRECHECK_UNSAFE_PATH', `${option} ${abs} is not empty; ferry would mix its files with what is there`, {
      hint: `Name a new or empty directory, or pass ${allowFlag} to write into it anyway (files of the same name are replaced).`,
      details: { path: abs },
    });
  }
  return abs;
}

/**
 * ferry's state directory (/var/lib/ferry): 0700 whatever it was before, and owned by the user ferry runs as. A
 * symlink to it is followed (an administrator may keep it on another disk; only root can place one there), but the
 * directory it reaches must be ours.
 */
export function ensureStateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const real = realpathSync(dir);
  const stat = lstatSync(real);
  const uid = process.geteuid?.() ?? stat.uid;
  if (stat.uid !== uid) {
    throw new FerryError('ERR_PRECHECK_UNSAFE_PATH', `the state directory ${real} belongs to uid ${stat.uid}, not to ferry's user (uid ${uid})`, {
      hint: `Another user could read or plant files there. Give it to uid ${uid} (chown) or point FERRY_STATE_DIR elsewhere.`,
      details: { path: real },
    });
  }
  ensurePrivateDir(real);
  return dir;
}
