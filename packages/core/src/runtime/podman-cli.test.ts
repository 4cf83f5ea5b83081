import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNoSuchContainer, parsePodmanInspect, parsePodmanPs, podmanState, PodmanCli } from './podman-cli';
import { podmanRestoreArgs, refusePodmanRestoreOptions } from './podman-restore';
import { managedElsewhere } from './runc-state';

/** `podman ps -a --format json` of Podman 4.3, trimmed to the fields ferry reads plus some it ignores. */
const PS = JSON.stringify([
  { Id: '1eb186f69ebf', Names: ['web'], State: 'running', Pid: 12645, Created: 1796524745, Image: 'localhost/bb:1' },
  { Id: '2fc297', Names: ['old'], State: 'exited', Pid: 0, Created: 1796524700 },
  { Id: '3ab', Names: [], State: 'running' },
]);

test('ps: named containers with state, pid and creation time; unnamed ones dropped', () => {
  expect(parsePodmanPs(PS)).toEqual([
    { ref: { runtime: 'podman', id: 'web' }, state: 'running', pid: 12645, createdAt: new Date(1796524745000).toISOString() },
    { ref: { runtime: 'podman', id: 'old' }, state: 'stopped', createdAt: new Date(1796524700000).toISOString() },
  ]);
  expect(parsePodmanPs('')).toEqual([]);
  expect(() => parsePodmanPs('{"a":1}')).toThrow(/JSON list/);
});

test('states: Podman words to ferry states', () => {
  expect(['running', 'paused', 'created', 'configured', 'exited', 'stopped', 'stopping', undefined].map(podmanState)).toEqual(['running', 'paused', 'created', 'created', 'stopped', 'stopped', 'unknown', 'unknown']);
});

test('inspect: the first container, or an error for output without one', () => {
  const one = parsePodmanInspect(JSON.stringify([{ Id: 'abc', Name: 'web', Image: 'sha', State: { Status: 'paused', Pid: 7 } }]));
  expect(one).toMatchObject({ Id: 'abc', Name: 'web', State: { Status: 'paused' } });
  expect(() => parsePodmanInspect('[]')).toThrow(/no container/);
  expect(() => parsePodmanInspect('[{"Id":"x"}]')).toThrow(/no container/);
});

test('no such container in the wordings of Podman 4', () => {
  expect(isNoSuchContainer('Error: no container with name or ID "x" found: no such container')).toBe(true);
  expect(isNoSuchContainer('Error: inspecting object: no such container x')).toBe(true);
  expect(isNoSuchContainer('Error: OCI runtime error')).toBe(false);
});

test('argv: global flags first, then the subcommand; never a shell', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-podman-cli-'));
  const fake = join(dir, 'podman');
  // A fake podman that records its argv, one per line, and answers `container inspect` with no container.
  writeFileSync(fake, `#!/bin/sh\nfor a in "$@"; do echo "$a"; done > ${dir}/argv\necho 'Error: no such container x' >&2\nexit 125\n`, { mode: 0o755 });
  const cli = new PodmanCli({ podmanPath: fake, podmanArgs: ['--root', '/r', '--runroot', '/rr'], commandTimeoutMs: 10_000 });
  expect(cli.argv(['ps'])).toEqual(['--root', '/r', '--runroot', '/rr', 'ps']);
  await expect(cli.inspect('web; rm -rf /')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
  try {
    expect(readFileSync(join(dir, 'argv'), 'utf8').split('\n').filter(Boolean)).toEqual(['--root', '/r', '--runroot', '/rr', 'container', 'inspect', '--format', 'json', '--', 'web; rm -rf /']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restore argv: the import with the dump flags, no --name (Podman 4.3 refuses it with --tcp-established)', () => {
  expect(podmanRestoreArgs('/w/a.tar', { tcpEstablished: true, fileLocks: true, extUnixSk: false })).toEqual(['container', 'restore', '--import', '/w/a.tar', '--tcp-established', '--file-locks']);
  expect(podmanRestoreArgs('/w/a.tar', { tcpEstablished: false, fileLocks: false, extUnixSk: false })).toEqual(['container', 'restore', '--import', '/w/a.tar']);
});

test('restore refuses lazy pages and new addresses with codes and hints', () => {
  expect(() => refusePodmanRestoreOptions({ imagesDir: '/x', lazyPages: true })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_FEATURE_MISSING', hint: expect.stringMatching(/stop-and-copy/) }));
  expect(() => refusePodmanRestoreOptions({ imagesDir: '/x', readdress: { eth0: '10.0.0.2/24' } })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_FEATURE_MISSING' }));
  expect(() => refusePodmanRestoreOptions({ imagesDir: '/x' })).not.toThrow();
});

test("runc's listing leaves Podman's containers to the Podman adapter", () => {
  const base = { id: 'a', pid: 1, status: 'running', bundle: '/b', rootfs: '/r', created: '' };
  expect(managedElsewhere({ ...base, annotations: { 'io.container.manager': 'libpod' } })).toBe(true);
  expect(managedElsewhere(base)).toBe(false);
});
