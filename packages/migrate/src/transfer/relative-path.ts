/**
 * Paths inside a transferred directory: '/'-separated, relative, canonical. The directory itself is '.'.
 *
 * Both ends use one rule so that an archive the sender could not have produced is refused before anything is
 * written: no absolute paths, no '.' or '..' components, no empty components, no NUL.
 */

/** The transferred directory itself. */
export const ROOT_PATH = '.';

/** Why `path` is not a canonical relative path, or undefined when it is one. */
export function relativePathProblem(path: string): string | undefined {
  if (path === ROOT_PATH) return undefined;
  if (path === '') return 'empty path';
  if (path.includes('\0')) return 'NUL in path';
  if (path.startsWith('/')) return 'absolute path';
  for (const part of path.split('/')) {
    if (part === '') return 'empty path component';
    if (part === '..') return "'..' component";
    if (part === '.') return "'.' component";
  }
  return undefined;
}

/** The parent of a canonical relative path ('.' for top-level entries). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? ROOT_PATH : path.slice(0, slash);
}

/** Every proper ancestor of a canonical relative path, outermost first, without '.': 'a/b/c' -> ['a', 'a/b']. */
export function ancestorPaths(path: string): string[] {
  const result: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) result.push(path.slice(0, i));
  return result;
}

/** True when `path` is `ancestor` or lies below it ('.' contains everything). */
export function isSameOrBelow(path: string, ancestor: string): boolean {
  return ancestor === ROOT_PATH || path === ancestor || path.startsWith(`${ancestor}/`);
}

/** `root` joined with a canonical relative path. */
export function absolutePath(root: string, path: string): string {
  return path === ROOT_PATH ? root : `${root}/${path}`;
}
