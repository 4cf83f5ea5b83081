import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { checkNewDirectory, ensureStateDir, readFileNoFollow, replaceFileNoFollow } from './safe-files';
import { createImageDir, privateImageFiles } from '../image/image-dir';

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

describe('directories for images', () => {
  test('createImageDir refuses a symlink instead of chmod-ing where it points', () => {
    mkdirSync(join(work, 'victim'), { mode: 0o755 });
    symlinkSync(join(work, 'victim'), join(work, 'images'));
    expect(() => createImageDir(join(work, 'images'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
    expect(statSync(join(work, 'victim')).mode & 0o777).toBe(0o755);
  });

  test('createImageDir makes new and existing directories 0700', () => {
    expect(statSync(createImageDir(join(work, 'a/b'))).mode & 0o777).toBe(0o700);
    mkdirSync(join(work, 'loose'), { mode: 0o755 });
    expect(statSync(createImageDir(join(work, 'loose'))).mode & 0o777).toBe(0o700);
  });

  test('checkNewDirectory: empty text, a file, a non-empty directory and a symlink are refused; the flag allows the last two', () => {
    const check = (p: string, allow = false) => checkNewDirectory(p, '--dir', '--allow-existing-dir', allow);
    expect(() => check('')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
    expect(() => check('  ')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
    writeFileSync(join(work, 'file'), '');
    expect(() => check(join(work, 'file'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
    mkdirSync(join(work, 'full'));
    writeFileSync(join(work, 'full', 'pages-1.img'), 'earlier checkpoint');
    expect(() => check(join(work, 'full'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH', hint: expect.stringContaining('--allow-existing-dir') }));
    expect(check(join(work, 'full'), true)).toBe(join(work, 'full'));
    symlinkSync(join(work, 'full'), join(work, 'link'));
    expect(() => check(join(work, 'link'))).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
    expect(check(join(work, 'link'), true)).toBe(join(work, 'full'));
    expect(check(join(work, 'new'))).toBe(join(work, 'new'));
    mkdirSync(join(work, 'empty'));
    expect(check(join(work, 'empty'))).toBe(join(work, 'empty'));
  });
});

test('privateImageFiles: files 0600, directories 0700, symlinks not followed', () => {
  mkdirSync(join(work, 'images', 'sub'), { recursive: true, mode: 0o755 });
  writeFileSync(join(work, 'images', 'pages-1.img'), 'x', { mode: 0o644 });
  writeFileSync(join(work, 'images', 'sub', 'core-1.img'), 'x', { mode: 0o644 });
  writeFileSync(join(work, 'elsewhere'), 'x', { mode: 0o644 });
  symlinkSync(join(work, 'elsewhere'), join(work, 'images', 'parent'));
  privateImageFiles(join(work, 'images'));
  const mode = (p: string) => statSync(join(work, p)).mode & 0o777;
  expect([mode('images'), mode('images/sub'), mode('images/pages-1.img'), mode('images/sub/core-1.img')]).toEqual([0o700, 0o700, 0o600, 0o600]);
  expect(mode('elsewhere')).toBe(0o644);
});

test('ensureStateDir: an existing 0755 state directory becomes 0700; a link to it is followed', () => {
  mkdirSync(join(work, 'var-lib-ferry'), { mode: 0o755 });
  ensureStateDir(join(work, 'var-lib-ferry'));
  expect(statSync(join(work, 'var-lib-ferry')).mode & 0o777).toBe(0o700);
  mkdirSync(join(work, 'other-disk'), { mode: 0o755 });
  symlinkSync(join(work, 'other-disk'), join(work, 'linked'));
  ensureStateDir(join(work, 'linked'));
  expect(statSync(join(work, 'other-disk')).mode & 0o777).toBe(0o700);
});
