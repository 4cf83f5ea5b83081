import { configProblems, containerStateOf, createOptionsOf, diffEntriesOf, namesContainer, rejoinedNetworks, rootfsChangesToCarry, type DockerInspect } from './docker-config';
import { resolveDockerAdapterOptions } from './docker-adapter';
import { dockerSocketOf } from './docker-client';
import { translateDockerError } from './docker-errors';

/** A `docker inspect` of `docker run -d --network none IMAGE CMD`, trimmed to what the adapter reads. */
function inspect(over: { Config?: object; HostConfig?: object; Mounts?: object[]; State?: object; NetworkSettings?: object } = {}): DockerInspect {
  return {
    Id: '59adbab249d451db011f4b747f1077815dac27f16b2088fb06c97ff7504dcc7e',
    Name: '/web',
    Created: '2026-11-27T14:53:32Z',
    Image: 'sha256:98182e433938059e7bbf8ff8f251ef02edc2fbe395dd6a003676709023877610',
    State: { Status: 'running', Running: true, Paused: false, Pid: 42, ...over.State },
    Config: { Hostname: '59adbab249d4', Image: 'ferry-dk-test:1', Env: ['A=1'], Cmd: ['/usr/bin/workload'], Entrypoint: null, Tty: false, WorkingDir: '', ...over.Config },
    HostConfig: { NetworkMode: 'none', IpcMode: 'private', PidMode: '', UTSMode: '', ...over.HostConfig },
    Mounts: over.Mounts ?? [],
    NetworkSettings: { Networks: {}, ...over.NetworkSettings },
  } as unknown as DockerInspect;
}

test('states in ferry words', () => {
  expect(containerStateOf({ Status: 'running', Paused: false, Running: true })).toBe('running');
  expect(containerStateOf({ Status: 'paused', Paused: true, Running: true })).toBe('paused');
  expect(containerStateOf({ Status: 'created', Paused: false, Running: false })).toBe('created');
  expect(containerStateOf({ Status: 'exited', Paused: false, Running: false })).toBe('stopped');
  expect(containerStateOf({ Status: 'restarting', Paused: false, Running: true })).toBe('unknown');
});

test('a name, a full id or a 12+ character id names the container; a short prefix does not', () => {
  const i = inspect();
  expect(namesContainer(i, 'web')).toBe(true);
  expect(namesContainer(i, i.Id)).toBe(true);
  expect(namesContainer(i, i.Id.slice(0, 12))).toBe(true);
  expect(namesContainer(i, '59a')).toBe(false);
  expect(namesContainer(i, 'other')).toBe(false);
});

test('a plain container has nothing to refuse', () => {
  expect(configProblems(inspect())).toEqual([]);
  expect(configProblems(inspect({ Mounts: [{ Type: 'tmpfs', Destination: '/run' }] }))).toEqual([]);
});

test.each([
  ['a terminal', { Config: { Tty: true } }, /terminal/, /without -t/],
  ['a bind mount', { Mounts: [{ Type: 'bind', Source: '/srv/data', Destination: '/data' }] }, /host directory \/srv\/data on \/data/, /bind mounts/],
  ['a volume', { Mounts: [{ Type: 'volume', Name: 'db', Source: '/var/lib/docker/volumes/db/_data', Destination: '/db' }] }, /volume db on \/db/, /volumes/],
  ['the host network', { HostConfig: { NetworkMode: 'host' } }, /network namespace of the host/, /own network/],
  ["another container's pid namespace", { HostConfig: { PidMode: 'container:db' } }, /pid namespace of db/, /own pid/],
])('%s is refused with a reason and a hint', (_what, over, reason, hint) => {
  const problems = configProblems(inspect(over));
  expect(problems).toHaveLength(1);
  expect(problems[0]!.reason).toMatch(reason);
  expect(problems[0]!.hint).toMatch(hint);
});

test('create options repeat the image, the process and the host config, without a terminal', () => {
  const i = inspect({ Config: { Entrypoint: ['/bin/sh', '-c'] }, HostConfig: { Memory: 1 << 30 } });
  const options = createOptionsOf(i);
  expect(options).toMatchObject({ Image: i.Image, Hostname: '59adbab249d4', Env: ['A=1'], Cmd: ['/usr/bin/workload'], Entrypoint: ['/bin/sh', '-c'], Tty: false });
  expect(options.HostConfig).toMatchObject({ NetworkMode: 'none', Memory: 1 << 30 });
  expect(createOptionsOf(inspect())).not.toHaveProperty('Entrypoint');
  expect(createOptionsOf(inspect())).not.toHaveProperty('NetworkingConfig');
  const onUserNet = createOptionsOf(inspect({ HostConfig: { NetworkMode: 'lan' }, NetworkSettings: { Networks: { lan: { Aliases: ['web'], IPAMConfig: { IPv4Address: '10.1.0.5' } } } } }));
  expect(onUserNet.NetworkingConfig).toEqual({ EndpointsConfig: { lan: { Aliases: ['web'], IPAMConfig: { IPv4Address: '10.1.0.5' } } } });
});

test('a fixed MAC (--mac-address) is carried with a fixed address on a user network; a generated one is not', () => {
  const macvlan = { HostConfig: { NetworkMode: 'lan' }, NetworkSettings: { Networks: { lan: { IPAMConfig: { IPv4Address: '10.77.0.170' }, MacAddress: '02:fe:0a:4d:00:aa' } } } };
  const fixed = createOptionsOf(inspect({ ...macvlan, Config: { MacAddress: '02:fe:0a:4d:00:aa' } }));
  expect(fixed.MacAddress).toBe('02:fe:0a:4d:00:aa');
  expect(fixed.NetworkingConfig).toEqual({ EndpointsConfig: { lan: { IPAMConfig: { IPv4Address: '10.77.0.170' }, MacAddress: '02:fe:0a:4d:00:aa' } } });
  // Docker reports the MAC it generated on the endpoint and an empty Config.MacAddress: the destination generates its own.
  const generated = createOptionsOf(inspect({ ...macvlan, Config: { MacAddress: '' } }));
  expect(generated.MacAddress).toBeUndefined();
  expect(generated.NetworkingConfig!.EndpointsConfig!.lan).not.toHaveProperty('MacAddress');
});

test('the network a restore joins again: a user network of the network mode, not none, bridge, host or a container', () => {
  const on = (mode: string, networks: object = { [mode]: {} }) => rejoinedNetworks(inspect({ HostConfig: { NetworkMode: mode }, NetworkSettings: { Networks: networks } }));
  expect(on('lan')).toEqual(['lan']);
  for (const mode of ['none', 'default', 'bridge', 'host', 'container:db']) expect(on(mode)).toEqual([]);
  expect(on('lan', {})).toEqual([]); // not connected (any more): createOptionsOf joins nothing either
});

test('docker diff: no change is null, which docker-modem hands back as the raw body; a list is the changes', () => {
  const list = [{ Path: '/tmp', Kind: 0 }];
  expect(diffEntriesOf(list)).toBe(list);
  for (const none of [null, undefined, Buffer.from('null\n'), Buffer.alloc(0), 'null']) expect(diffEntriesOf(none)).toEqual([]);
  expect(() => diffEntriesOf(Buffer.from('<html>'))).toThrow(expect.objectContaining({ code: 'ERR_RUNTIME_FAILED', message: expect.stringMatching(/docker diff answered "<html>"/) }));
  expect(() => diffEntriesOf({ Path: '/x' })).toThrow(/answered object/);
});

test('DOCKER_HOST: unix sockets and paths are used, remote daemons are refused with the reason', () => {
  expect(dockerSocketOf('unix:///run/x/docker.sock')).toEqual({ socketPath: '/run/x/docker.sock' });
  expect(dockerSocketOf('/var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
  expect(dockerSocketOf('tcp://10.0.0.1:2375')).toEqual({ unusable: expect.stringMatching(/needs its unix socket/) });
  expect(dockerSocketOf('unix://relative')).toEqual({ unusable: expect.stringMatching(/absolute/) });
});

test('options: defaults filled in, unknown keys and bad timeouts refused', () => {
  const o = resolveDockerAdapterOptions({});
  expect(o.dockerHost).toBe('unix:///var/run/docker.sock');
  expect(Object.isFrozen(o)).toBe(true);
  expect(() => resolveDockerAdapterOptions({ socket: 'x' } as never)).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
  expect(() => resolveDockerAdapterOptions({ commandTimeoutMs: 0 })).toThrow(/positive/);
});

describe('docker-modem errors become ferry codes, the original kept as cause', () => {
  const ctx = { what: 'inspect web', socket: '/run/docker.sock', subject: 'web' };
  const http = (statusCode: number, message: string) => Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message}`), { statusCode, json: { message } });

  test.each([
    [Object.assign(new Error('connect ENOENT /run/docker.sock'), { code: 'ENOENT' }), 'ERR_RUNTIME_UNAVAILABLE'],
    [Object.assign(new Error('connect ECONNREFUSED /run/docker.sock'), { code: 'ECONNREFUSED' }), 'ERR_RUNTIME_UNAVAILABLE'],
    [Object.assign(new Error('timeout'), { timeout: 3000 }), 'ERR_RUNTIME_UNAVAILABLE'],
    [http(404, 'No such container: web'), 'ERR_RUNTIME_NOT_FOUND'],
    [http(409, 'Conflict. The container name "/web" is already in use by container "abc"'), 'ERR_RUNTIME_NAME_TAKEN'],
    [http(409, 'Container abc is not running'), 'ERR_RUNTIME_NOT_RUNNING'],
    [http(500, 'failed to create task for container: OCI runtime restore failed: criu failed: type RESTORE errno 0\nlog file: /var/lib/docker/containerd/x/criu.work/restore.log'), 'ERR_CRIU_RESTORE_FAILED'],
    [http(500, 'something else'), 'ERR_RUNTIME_FAILED'],
  ])('%s', (err, code) => {
    const translated = translateDockerError(err, ctx);
    expect(translated.code).toBe(code);
    expect(translated.hint).toBeTruthy();
    expect(translated.cause).toBe(err);
  });

  test('the daemon message is quoted without docker-modem\'s prefix, and the CRIU log is named', () => {
    const err = translateDockerError(http(500, 'OCI runtime restore failed: criu failed\nlog file: /x/criu.work/restore.log'), ctx);
    expect(err.message).not.toMatch(/HTTP code/);
    expect(err.details.logPath).toBe('/x/criu.work/restore.log');
  });
});

test('the writable layer to carry: changes and additions, not Docker\'s own files, mounts or kernel filesystems', () => {
  const changes = [
    { Path: '/tmp', Kind: 0 },
    { Path: '/tmp/state', Kind: 1 },
    { Path: '/etc', Kind: 0 },
    { Path: '/etc/hostname', Kind: 0 },
    { Path: '/etc/resolv.conf', Kind: 0 },
    { Path: '/scratch/x', Kind: 1 },
    { Path: '/dev/console', Kind: 0 },
    { Path: '/usr/bin/old', Kind: 2 },
    { Path: '/var/../etc/passwd', Kind: 0 },
  ];
  expect(rootfsChangesToCarry(changes, ['/scratch'])).toEqual({ carried: ['/etc', '/tmp', '/tmp/state'], deleted: ['/usr/bin/old'] });
});
