import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFileNoFollow, replaceFileNoFollow } from './safe-files';

let work: string;
beforeEach(() => (work = mkdtempSync(join(tmpdir(), 'ferry-safe-files-'))));
afterEach(() => rmSync(work, { recursive: true, force: true }));

test('reads a regular file; a missing one is undefined', () => {
  writeFileSync(join(work, 'f'), 'text');
  expect(readFileNoFollow(join(work, 'f'))).toBe('text');
  expect(readFileNoFollow(join(work, 'none'))).toBeUndefined();
});

test('a symlink or a fifo is refused, not read', () => {
  writeFileSync(join(work, 'secret'), 'secret');
  symlinkSync(join(work, 'secret'), join(work, 'link'));
  execFileSync('mkfifo', [join(work, 'fifo')]);
  expect(() => readFileNoFollow(join(work, 'link'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(() => readFileNoFollow(join(work, 'fifo'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
});

test('replace: new content through a rename, old mode kept, no temporary file left', () => {
  writeFileSync(join(work, 'f'), 'old', { mode: 0o604 });
  replaceFileNoFollow(join(work, 'f'), 'new');
  expect(readFileSync(join(work, 'f'), 'utf8')).toBe('new');
  expect(statSync(join(work, 'f')).mode & 0o777).toBe(0o604);
  replaceFileNoFollow(join(work, 'g'), 'fresh');
  expect(statSync(join(work, 'g')).mode & 0o777).toBe(0o600);
  expect(readdirSync(work).sort()).toEqual(['f', 'g']);
});

test('replace refuses a symlink in the file\'s place or the directory\'s', () => {
  writeFileSync(join(work, 'victim'), 'untouched');
  symlinkSync(join(work, 'victim'), join(work, 'f'));
  expect(() => replaceFileNoFollow(join(work, 'f'), 'x')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  mkdirSync(join(work, 'real'));
  symlinkSync(join(work, 'real'), join(work, 'dir-link'));
  expect(() => replaceFileNoFollow(join(work, 'dir-link', 'f'), 'x')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(readFileSync(join(work, 'victim'), 'utf8')).toBe('untouched');
  expect(readdirSync(join(work, 'real'))).toEqual([]);
});
