import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValue, lxcConfigProblems, parseLxcConfigText, readLxcConfig, rewriteConfigPaths, rootfsPathOf } from './lxc-config';

const DIR = '/var/lib/lxc/web';
const parse = (lines: string[]) => parseLxcConfigText(lines.join('\n'), `${DIR}/config`);
const keys = (lines: string[], apparmor = false) => lxcConfigProblems(parse(lines), { apparmor, containerDir: DIR }).map((p) => p.key);

test('parses key = value lines, skips comments; the last value wins and an empty one clears', () => {
  const entries = parse(['# c', 'lxc.tty.max = 4', '', 'lxc.tty.max=0', 'lxc.console.path = /dev/tty', 'lxc.console.path =', 'lxc.rootfs.path = dir:/r']);
  expect(lastValue(entries, 'lxc.tty.max')).toBe('0');
  expect(lastValue(entries, 'lxc.console.path')).toBeUndefined();
  expect(rootfsPathOf(entries)).toBe('/r');
});

test('expands lxc.include (files and directories of *.conf) in place, and cuts loops', () => {
  const files: Record<string, string> = {
    '/c/config': 'lxc.tty.max = 1\nlxc.include = /c/common.conf\nlxc.include = /c/d\nlxc.include = /c/config\n',
    '/c/common.conf': 'lxc.tty.max = 4\n',
    '/c/d/b.conf': 'lxc.pty.max = 2\n',
    '/c/d/a.conf': 'lxc.tty.max = 0\n',
  };
  const read = (p: string) => {
    if (!(p in files)) throw new Error('ENOENT');
    return files[p]!;
  };
  const list = (p: string) => Object.keys(files).filter((f) => f.startsWith(`${p}/`)).map((f) => f.slice(p.length + 1));
  const entries = readLxcConfig('/c/config', read, list);
  expect(entries.map((e) => `${e.key}=${e.value}`)).toEqual(['lxc.tty.max=1', 'lxc.tty.max=4', 'lxc.tty.max=0', 'lxc.pty.max=2']);
  expect(() => readLxcConfig('/nothere', read, list)).toThrow(/cannot read LXC config/);
});

test('the configuration the adapter needs passes', () => {
  expect(keys(['lxc.tty.max = 0', 'lxc.pty.max = 0', 'lxc.console.path = none', 'lxc.net.0.type = empty'])).toEqual([]);
  expect(keys([])).toEqual([]);
});

test('ttys, a host console, AppArmor without AppArmor, host bind mounts and fstabs are refused', () => {
  expect(keys(['lxc.tty.max = 4'])).toEqual(['lxc.tty.max']);
  expect(keys(['lxc.console.path = /dev/tty1'])).toEqual(['lxc.console.path']);
  expect(keys(['lxc.apparmor.profile = generated'])).toEqual(['lxc.apparmor.profile']);
  expect(keys(['lxc.apparmor.profile = generated'], true)).toEqual([]);
  expect(keys(['lxc.apparmor.profile = unconfined'])).toEqual([]);
  expect(keys(['lxc.mount.entry = /lib lib none bind,ro,create=dir 0 0'])).toEqual(['lxc.mount.entry']);
  expect(keys(['lxc.mount.entry = /srv/data srv none rbind 0 0'])).toEqual(['lxc.mount.entry']);
  expect(keys(['lxc.mount.fstab = /var/lib/lxc/web/fstab'])).toEqual(['lxc.mount.fstab']);
  const all = lxcConfigProblems(parse(['lxc.tty.max = 1', 'lxc.mount.entry = /lib lib none bind 0 0']), { apparmor: false, containerDir: DIR });
  expect(all.map((p) => p.key)).toEqual(['lxc.tty.max', 'lxc.mount.entry']);
  for (const p of all) expect(p.hint).toMatch(/\S/);
});

test('bind mounts from inside the container directory and non-bind mounts are allowed', () => {
  expect(keys([`lxc.mount.entry = ${DIR}/data data none bind 0 0`])).toEqual([]);
  expect(keys(['lxc.mount.entry = tmpfs tmp tmpfs defaults 0 0'])).toEqual([]);
  expect(keys(['lxc.mount.entry = /var/lib/lxc/webby/x x none bind 0 0'])).toEqual(['lxc.mount.entry']);
});

describe('rewriteConfigPaths (a container directory that arrived from another host)', () => {
  let work: string;
  beforeEach(() => (work = mkdtempSync(join(tmpdir(), 'ferry-lxc-config-'))));
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  test('names of the old directory become the new one; comments stay; the mode is kept', () => {
    const config = join(work, 'config');
    writeFileSync(config, `# from /old/ct/\nlxc.rootfs.path = dir:/old/ct/rootfs\nlxc.log.file = /old/ct/ct.log\n`, { mode: 0o640 });
    rewriteConfigPaths(config, '/old/ct', '/new/ct');
    expect(readFileSync(config, 'utf8')).toBe(`# from /old/ct/\nlxc.rootfs.path = dir:/new/ct/rootfs\nlxc.log.file = /new/ct/ct.log\n`);
    expect(statSync(config).mode & 0o777).toBe(0o640);
  });

  test('a config that is a symlink is refused and the file it points at stays as it was', () => {
    const victim = join(work, 'victim-config');
    writeFileSync(victim, 'lxc.rootfs.path = dir:/old/ct/rootfs\n');
    mkdirSync(join(work, 'ct'));
    symlinkSync(victim, join(work, 'ct', 'config'));
    expect(() => rewriteConfigPaths(join(work, 'ct', 'config'), '/old/ct', '/new/ct')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
    expect(readFileSync(victim, 'utf8')).toBe('lxc.rootfs.path = dir:/old/ct/rootfs\n');
  });
});
