import { ancestorPaths, isSameOrBelow, parentPath, relativePathProblem } from './relative-path';

test('canonical relative paths pass, anything that could leave the directory does not', () => {
  for (const ok of ['.', 'a', 'a/b/c', '.hidden', 'a/..b', 'a/b..', '...', 'dir with space/ü']) expect(relativePathProblem(ok)).toBeUndefined();
  expect(relativePathProblem('')).toBe('empty path');
  expect(relativePathProblem('/etc/passwd')).toBe('absolute path');
  expect(relativePathProblem('../evil')).toBe("'..' component");
  expect(relativePathProblem('a/../../evil')).toBe("'..' component");
  expect(relativePathProblem('a/..')).toBe("'..' component");
  expect(relativePathProblem('./a')).toBe("'.' component");
  expect(relativePathProblem('a//b')).toBe('empty path component');
  expect(relativePathProblem('a/')).toBe('empty path component');
  expect(relativePathProblem('a\0b')).toBe('NUL in path');
});

test('parents and ancestors', () => {
  expect(parentPath('a')).toBe('.');
  expect(parentPath('a/b/c')).toBe('a/b');
  expect(ancestorPaths('a')).toEqual([]);
  expect(ancestorPaths('a/b/c')).toEqual(['a', 'a/b']);
  expect(isSameOrBelow('a/b', 'a')).toBe(true);
  expect(isSameOrBelow('a', 'a')).toBe(true);
  expect(isSameOrBelow('ab', 'a')).toBe(false);
  expect(isSameOrBelow('x', '.')).toBe(true);
});
