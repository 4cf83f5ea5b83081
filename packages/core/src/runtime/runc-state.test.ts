import type { CgroupInfo } from '../host/cgroup-layout';
import {
  absoluteBundlePaths,
  containerStateOf,
  freezerPathOf,
  networkNamespaceOf,
  parseRuncList,
  parseRuncState,
  runningStateOf,
  relocatePaths,
  rewriteConfigForRestore,
  rootfsOf,
  stdioProblem,
  type OciConfig,
} from './runc-state';

const STATE = `{
  "ociVersion": "1.0.2-dev",
  "id": "web",
  "pid": 12559,
  "status": "running",
  "bundle": "/srv/web",
  "rootfs": "/srv/web/rootfs",
  "created": "2026-11-27T12:22:21.345571926Z",
  "owner": ""
}`;

// /proc/PID/cgroup of a runc container on the lab's hybrid host (cgroupsPath /ferry-test/web).
const PROC_CGROUP = `9:name=systemd:/ferry-test/web
8:pids:/ferry-test/web
6:freezer:/ferry-test/web
5:devices:/ferry-test/web
1:cpu:/ferry-test/web
0::/ferry-test/web
`;

const hybrid: CgroupInfo = {
  layout: 'hybrid',
  freezer: { kind: 'v1', mountpoint: '/sys/fs/cgroup/freezer' },
  v2Mountpoint: '/sys/fs/cgroup/unified',
  v1Controllers: { freezer: '/sys/fs/cgroup/freezer', pids: '/sys/fs/cgroup/pids' },
};
const v2: CgroupInfo = { layout: 'v2', freezer: { kind: 'v2', mountpoint: '/sys/fs/cgroup' }, v2Mountpoint: '/sys/fs/cgroup', v1Controllers: {} };

const config: OciConfig = {
  process: { terminal: false, args: ['/usr/bin/workload'] },
  root: { path: 'rootfs', readonly: false },
  linux: {
    cgroupsPath: '/ferry-test/web',
    namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/ferry-ct-web' }, { type: 'mount' }],
    resources: { devices: [] },
  },
};

test('parses runc state and list output, including the "null" of an empty list', () => {
  expect(parseRuncState(STATE)).toMatchObject({ id: 'web', pid: 12559, status: 'running', bundle: '/srv/web' });
  expect(parseRuncList('null\n')).toEqual([]);
  expect(parseRuncList(`[${STATE}]`)).toHaveLength(1);
  expect(() => parseRuncState('{"pid": 1}')).toThrow(/unexpected runc state/);
});

describe('runningStateOf (runc state.json, as runc 1.1 writes it)', () => {
  const file = {
    id: 'web',
    init_process_pid: 2157,
    init_process_start: 5150959,
    created: '2026-12-07T14:10:17.505377544Z',
    config: { rootfs: '/var/lib/ferry/migrations/m/rootfs', labels: ['bundle=/run/ferry/runc/web/bundle'] },
    rootless: false,
    cgroup_paths: {},
  };
  const startTime = (start: string | undefined) => (pid: number) => (pid === 2157 ? start : undefined);

  it('gives what `runc state` prints for a running container whose init has the recorded start time', () => {
    expect(runningStateOf(JSON.stringify(file), startTime('5150959'))).toEqual({
      id: 'web',
      pid: 2157,
      status: 'running',
      bundle: '/run/ferry/runc/web/bundle',
      rootfs: '/var/lib/ferry/migrations/m/rootfs',
      created: '2026-12-07T14:10:17.505377544Z',
    });
  });

  it('gives nothing (runc is asked) when the init is gone, is another process, or the file is not runc\'s', () => {
    expect(runningStateOf(JSON.stringify(file), startTime(undefined))).toBeUndefined();
    expect(runningStateOf(JSON.stringify(file), startTime('5150960'))).toBeUndefined();
    expect(runningStateOf(JSON.stringify({ ...file, config: { ...file.config, labels: [] } }), startTime('5150959'))).toBeUndefined();
    expect(runningStateOf(JSON.stringify({ ...file, init_process_pid: 0 }), startTime('5150959'))).toBeUndefined();
    expect(runningStateOf(JSON.stringify({ ...file, init_process_start: '5150959' }), startTime('5150959'))).toBeUndefined();
    expect(runningStateOf('{"id":', startTime('5150959'))).toBeUndefined();
    expect(runningStateOf('null', startTime('5150959'))).toBeUndefined();
  });
});

test('maps runc statuses; the pausing transition is unknown', () => {
  expect(['created', 'running', 'pausing', 'paused', 'stopped'].map(containerStateOf)).toEqual([
    'created',
    'running',
    'unknown',
    'paused',
    'stopped',
  ]);
});

test('finds the freezer directory on hybrid (v1 freezer line) and v2 (0:: line) hosts', () => {
  expect(freezerPathOf(PROC_CGROUP, hybrid)).toBe('/sys/fs/cgroup/freezer/ferry-test/web');
  expect(freezerPathOf('0::/system.slice/runc-web.scope\n', v2)).toBe('/sys/fs/cgroup/system.slice/runc-web.scope');
  expect(freezerPathOf('0::/x\n', hybrid)).toBeUndefined();
  expect(freezerPathOf(PROC_CGROUP, { ...v2, freezer: null })).toBeUndefined();
});

test('reads the network namespace and rootfs from config.json', () => {
  expect(networkNamespaceOf(config)).toEqual({ path: '/run/netns/ferry-ct-web' });
  expect(networkNamespaceOf({ linux: { namespaces: [{ type: 'network' }] } })).toEqual({});
  expect(networkNamespaceOf({ linux: { namespaces: [{ type: 'pid' }] } })).toBeUndefined();
  expect(rootfsOf(config, '/srv/web')).toBe('/srv/web/rootfs');
  expect(rootfsOf({ root: { path: '/abs/root' } }, '/srv/web')).toBe('/abs/root');
});

test('accepts /dev/null and pipes as stdio, names terminals, host files and sockets', () => {
  expect(stdioProblem(['/dev/null', 'pipe:[123]', '/dev/null'])).toBeUndefined();
  expect(stdioProblem([undefined, '/dev/null', '/dev/null'])).toBeUndefined();
  expect(stdioProblem(['/dev/null', '/dev/pts/3', '/dev/null'])).toBe('its stdout is a terminal (/dev/pts/3)');
  expect(stdioProblem(['/dev/null', '/dev/null', '/tmp/run.err'])).toBe('its stderr is a host file (/tmp/run.err)');
  expect(stdioProblem(['socket:[99]', '/dev/null', '/dev/null'])).toMatch(/stdin is a socket/);
});

describe('rewriteConfigForRestore', () => {
  test('renames the cgroup, sets the netns path and makes root.path absolute, leaving the original alone', () => {
    const copy = rewriteConfigForRestore(config, { bundle: '/srv/web', netnsPath: '/run/netns/ferry-ct-web2', oldName: 'web', newName: 'web2' });
    expect(copy.root).toEqual({ path: '/srv/web/rootfs', readonly: false });
    expect(copy.linux?.cgroupsPath).toBe('/ferry-test/web2');
    expect(copy.linux?.namespaces?.find((n) => n.type === 'network')).toEqual({ type: 'network', path: '/run/netns/ferry-ct-web2' });
    expect(copy.linux?.resources).toEqual({ devices: [] });
    expect(config.linux?.cgroupsPath).toBe('/ferry-test/web');
    expect(config.root?.path).toBe('rootfs');
  });

  test('keeps cgroupsPath when the name is the same or the path does not end in it; handles systemd paths', () => {
    expect(rewriteConfigForRestore(config, { bundle: '/b', oldName: 'web', newName: 'web' }).linux?.cgroupsPath).toBe('/ferry-test/web');
    const other = { ...config, linux: { ...config.linux, cgroupsPath: '/pods/abc' } };
    expect(rewriteConfigForRestore(other, { bundle: '/b', oldName: 'web', newName: 'x' }).linux?.cgroupsPath).toBe('/pods/abc');
    const systemd = { ...config, linux: { ...config.linux, cgroupsPath: 'system.slice:runc:web' } };
    expect(rewriteConfigForRestore(systemd, { bundle: '/b', oldName: 'web', newName: 'x' }).linux?.cgroupsPath).toBe('system.slice:runc:x');
  });
});

describe('relocatePaths', () => {
  it('moves the root and bind mount sources under a relocated directory, longest key first, and nothing else', () => {
    const config: OciConfig = {
      root: { path: '/tmp/old-bundle/rootfs' },
      mounts: [
        { destination: '/state', type: 'bind', source: '/tmp/old-bundle/state', options: ['rbind', 'rw'] },
        { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind'] },
        { destination: '/etc/x', source: '/srv/data-other/x', options: ['bind'] },
        { destination: '/proc', type: 'proc', source: 'proc' },
      ],
    };
    relocatePaths(config, { '/tmp/old-bundle': '/var/lib/ferry/migrations/m/bundle', '/srv/data': '/var/lib/ferry/migrations/m/mount/0' });
    expect(config.root?.path).toBe('/var/lib/ferry/migrations/m/bundle/rootfs');
    expect(config.mounts?.map((m) => m.source)).toEqual(['/var/lib/ferry/migrations/m/bundle/state', '/var/lib/ferry/migrations/m/mount/0', '/srv/data-other/x', 'proc']);
  });
});

describe('absoluteBundlePaths', () => {
  test('root and bind sources relative to the bundle become absolute; other mounts and the input stay as they are', () => {
    const config: OciConfig = {
      root: { path: 'rootfs' },
      mounts: [
        { destination: '/data', source: 'data', options: ['rbind'] },
        { destination: '/x', type: 'bind', source: '../x' },
        { destination: '/abs', type: 'bind', source: '/srv/abs' },
        { destination: '/proc', type: 'proc', source: 'proc' },
      ],
    };
    const copy = absoluteBundlePaths(config, '/srv/web');
    expect(copy.root?.path).toBe('/srv/web/rootfs');
    expect(copy.mounts?.map((m) => m.source)).toEqual(['/srv/web/data', '/srv/x', '/srv/abs', 'proc']);
    expect(config.root?.path).toBe('rootfs');
  });
});
