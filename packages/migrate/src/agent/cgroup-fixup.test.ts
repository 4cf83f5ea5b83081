import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFreeCgroupsPath } from './cgroup-fixup';

let work: string;
let roots: string[];
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ferry-cgroup-fixup-'));
  // A fake cgroup root in which /ferry/ct is busy.
  const root = join(work, 'cgroup');
  mkdirSync(join(root, 'ferry/ct'), { recursive: true });
  writeFileSync(join(root, 'ferry/ct/cgroup.procs'), '4242\n');
  roots = [root];
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const config = (cgroupsPath: string) => JSON.stringify({ ociVersion: '1.0.2', linux: { cgroupsPath } }, null, 2);

test('a busy cgroupsPath is replaced by a fresh sibling, atomically and keeping the mode', () => {
  const bundle = join(work, 'bundle');
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'config.json'), config('/ferry/ct'), { mode: 0o640 });
  expect(ensureFreeCgroupsPath(bundle, roots, 'abcd1234')).toBe('/ferry/ct-abcd1234');
  expect(JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')).linux.cgroupsPath).toBe('/ferry/ct-abcd1234');
  expect(statSync(join(bundle, 'config.json')).mode & 0o777).toBe(0o640);
  expect(ensureFreeCgroupsPath(bundle, roots, 'x')).toBe('/ferry/ct-abcd1234'); // free now: left alone
});

test('a config.json that is a symlink is refused, and the file it points at is not touched', () => {
  const other = join(work, 'other-container');
  mkdirSync(other);
  writeFileSync(join(other, 'config.json'), config('/ferry/ct'));
  const before = readFileSync(join(other, 'config.json'), 'utf8');
  const bundle = join(work, 'bundle');
  mkdirSync(bundle);
  symlinkSync(join(other, 'config.json'), join(bundle, 'config.json'));
  expect(() => ensureFreeCgroupsPath(bundle, roots, 'abcd1234')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(readFileSync(join(other, 'config.json'), 'utf8')).toBe(before);
  expect(lstatSync(join(bundle, 'config.json')).isSymbolicLink()).toBe(true);
});

test('a bundle directory that is a symlink is refused too', () => {
  const other = join(work, 'other-container');
  mkdirSync(other);
  writeFileSync(join(other, 'config.json'), config('/ferry/ct'));
  symlinkSync(other, join(work, 'bundle'));
  expect(() => ensureFreeCgroupsPath(join(work, 'bundle'), roots, 'abcd1234')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(JSON.parse(readFileSync(join(other, 'config.json'), 'utf8')).linux.cgroupsPath).toBe('/ferry/ct');
});

test('no config.json (LXC, Docker bundles): nothing to do', () => {
  const bundle = join(work, 'bundle');
  mkdirSync(bundle);
  expect(ensureFreeCgroupsPath(bundle, roots, 'x')).toBeUndefined();
});
