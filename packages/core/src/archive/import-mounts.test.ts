import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../model/ferry-error';
import { removeDeletedFiles } from './archive-rootfs';
import { assertExportable } from './export-archive';
import { configForImport } from './import-archive';
import { planImportMounts } from './import-mounts';

const podmanSpec = {
  hostname: 'abc123',
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/etc/hosts', type: 'bind', source: '/run/containers/storage/x/userdata/hosts', options: ['bind', 'rprivate'] },
    { destination: '/dev/shm', type: 'bind', source: '/var/lib/containers/x/userdata/shm', options: ['bind'] },
    { destination: '/etc/hostname', type: 'bind', source: '/gone/hostname' },
    { destination: '/data', type: 'bind', source: '/var/lib/containers/storage/volumes/data/_data', options: ['rbind'] },
    { destination: '/state', type: 'bind', source: '/srv/state', options: ['rbind'] },
    { destination: '/cache', source: '/srv/cache', options: ['rbind', 'rw'] },
  ],
  linux: { cgroupsPath: '/libpod_parent/libpod-abc', namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/netns-1234' }] },
};

describe('planImportMounts', () => {
  const input = {
    spec: podmanSpec,
    config: { name: 'web', namedVolumes: [{ volumeName: 'data', dest: '/data' }] },
    userdata: '/imp/userdata',
    volumesDir: '/imp/volumes',
    archiveDir: '/imp',
    hostResolvConf: 'nameserver 10.0.0.1\n',
  };

  it("gives Podman's per-container files and named volumes new sources, keeps host binds that exist, lists the rest", () => {
    const plan = planImportMounts({ ...input, sourceExists: (p) => p === '/srv/state' });
    expect([...plan.sources.keys()].sort()).toEqual(['/data', '/dev/shm', '/etc/hostname', '/etc/hosts']);
    expect(plan.sources.get('/etc/hosts')).toEqual({ kind: 'file', path: '/imp/userdata/hosts', content: '127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\tabc123\n' });
    expect(plan.sources.get('/etc/hostname')).toMatchObject({ content: 'abc123\n' });
    expect(plan.sources.get('/dev/shm')).toEqual({ kind: 'dir', path: '/imp/userdata/shm', mode: 0o1777, tar: '/imp/devshm-checkpoint.tar' });
    expect(plan.sources.get('/data')).toEqual({ kind: 'dir', path: '/imp/userdata/volumes/data', mode: 0o755, tar: '/imp/volumes/data.tar' });
    expect(plan.missing).toEqual(['/srv/cache -> /cache']);
  });

  it('a volume name that could climb out is treated as a plain bind mount', () => {
    const plan = planImportMounts({ ...input, config: { name: 'web', namedVolumes: [{ volumeName: '../x', dest: '/data' }] }, sourceExists: () => false });
    expect(plan.sources.has('/data')).toBe(false);
    expect(plan.missing).toContain('/var/lib/containers/storage/volumes/data/_data -> /data');
  });
});

it('configForImport points root, mounts, cgroup and network namespace at this import', () => {
  const plan = planImportMounts({
    spec: podmanSpec,
    config: { name: 'web' },
    sourceExists: () => true,
    userdata: '/imp/userdata',
    volumesDir: '/imp/volumes',
    archiveDir: '/imp',
    hostResolvConf: '',
  });
  const config = configForImport(podmanSpec, { rootfs: '/imp/bundle/rootfs', name: 'web2', sources: plan.sources, missingNetnsPath: '/imp/none', netnsExists: () => false });
  expect(config.root).toEqual({ path: '/imp/bundle/rootfs', readonly: false });
  expect(config.mounts!.find((m) => m.destination === '/etc/hosts')!.source).toBe('/imp/userdata/hosts');
  expect(config.mounts!.find((m) => m.destination === '/state')!.source).toBe('/srv/state');
  expect(config.linux!.cgroupsPath).toBe('/ferry/web2');
  expect(config.linux!.namespaces).toEqual([{ type: 'pid' }, { type: 'network', path: '/imp/none' }]);
  expect(podmanSpec.linux.namespaces[1]!.path).toBe('/run/netns/netns-1234');
  const back = configForImport(podmanSpec, { rootfs: '/r', name: 'web', sources: plan.sources, missingNetnsPath: '/imp/none', netnsExists: () => true });
  expect(back.linux!.namespaces![1]).toEqual({ type: 'network', path: '/run/netns/netns-1234' });
});

describe('removeDeletedFiles', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ferry-deleted-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('removes files and directories, never through a symlink, never with ..', () => {
    const rootfs = join(root, 'rootfs');
    const outside = join(root, 'outside');
    mkdirSync(join(rootfs, 'etc', 'old'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(rootfs, 'etc', 'motd'), 'x');
    writeFileSync(join(rootfs, 'etc', 'old', 'a'), 'x');
    writeFileSync(join(outside, 'precious'), 'x');
    symlinkSync(outside, join(rootfs, 'link'));
    const result = removeDeletedFiles(rootfs, ['/etc/motd', '/etc/old', '/link/precious', '/../outside/precious', '/not/there/at/all', '/link']);
    expect(result.skipped).toEqual(['/link/precious', '/../outside/precious']);
    expect(existsSync(join(rootfs, 'etc', 'motd'))).toBe(false);
    expect(existsSync(join(rootfs, 'etc', 'old'))).toBe(false);
    expect(existsSync(join(rootfs, 'link'))).toBe(false); // the link itself goes
    expect(existsSync(join(outside, 'precious'))).toBe(true);
  });
});

it('refuses LXC and Docker checkpoints with the reason, before anything is frozen', () => {
  for (const runtime of ['lxc', 'docker']) {
    let err: unknown;
    try {
      assertExportable(runtime);
    } catch (e) {
      err = e;
    }
    expect(isFerryError(err) && err.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
    expect((err as Error).message).toMatch(runtime === 'lxc' ? /OCI runtime spec/ : /create options, not the OCI spec/);
  }
  expect(() => assertExportable('runc')).not.toThrow();
  expect(() => assertExportable('podman')).not.toThrow();
});
