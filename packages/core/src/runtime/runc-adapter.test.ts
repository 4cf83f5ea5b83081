/**
 * The runc adapter's decisions and error translation against a fake runc (a shell script); the real thing is in
 * runc-adapter.int.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RESTORE_TIMEOUT_MS } from './adapter-options';
import { RuncAdapter, resolveRuncAdapterOptions } from './runc-adapter';
import { RECORD_FORMAT, writeCheckpointRecord } from './checkpoint-record';
import { rejection } from '../testing/rejection';

let dir: string;
let sleeper: ChildProcess | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-runc-unit-'));
});
afterEach(() => {
  sleeper?.kill('SIGKILL');
  sleeper = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A fake runc: `cases` is the body of a shell `case "$cmd" in ... esac`, where cmd is runc's subcommand. */
function adapterWith(cases: string): RuncAdapter {
  const path = join(dir, 'runc');
  const script = `#!/bin/sh
work=""; cmd=""
for a in "$@"; do
  case "$prev" in --work-path) work="$a" ;; esac
  prev="$a"
  case "$a" in state|list|checkpoint|restore|pause|resume|kill|delete|--version) [ -z "$cmd" ] && cmd="$a" ;; esac
done
case "$cmd" in
${cases}
esac
`;
  writeFileSync(path, script);
  chmodSync(path, 0o755);
  // runc's root here too: whether a name is taken is read from it (runc-containers.ts, exists).
  return new RuncAdapter({ runcPath: path, runcRoot: join(dir, 'runc-root'), stateDir: join(dir, 'state') });
}

const NOT_FOUND = `state) echo 'time="t" level=error msg="container does not exist"' >&2; exit 1 ;;`;


describe('options', () => {
  test('are resolved once, frozen, with defaults', () => {
    const options = resolveRuncAdapterOptions({ runcPath: '/x/runc' });
    expect(Object.isFrozen(options)).toBe(true);
    expect(options).toMatchObject({ runcPath: '/x/runc', runcRoot: undefined, stateDir: '/run/ferry/runc', netnsPrefix: 'ferry-ct-' });
    expect(options.restoreTimeoutMs).toBe(DEFAULT_RESTORE_TIMEOUT_MS);
  });

  test('reject unknown keys with a did-you-mean, and bad timeouts', () => {
    expect(() => resolveRuncAdapterOptions({ runcRot: '/r' } as never)).toThrow('unknown option "runcRot"; did you mean "runcRoot"?');
    expect(() => resolveRuncAdapterOptions({ restoreTimeoutMs: 0 })).toThrow(/restoreTimeoutMs must be a positive number/);
  });
});

test('inspect of a missing container is ERR_RUNTIME_NOT_FOUND with the ferry ps hint', async () => {
  const err = await rejection(adapterWith(NOT_FOUND).inspect('web'));
  expect(err).toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND', hint: 'Run `ferry ps` to see the containers ferry can find.' });
});

test('names that runc would read as flags are refused before runc runs', async () => {
  const err = await rejection(adapterWith('*) exit 99 ;;').inspect('--all'));
  expect(err.code).toBe('ERR_PRECHECK_BAD_INPUT');
});

test('list copes with runc printing null', async () => {
  expect(await adapterWith(`list) echo null ;;`).list()).toEqual([]);
});

test('other runc failures are ERR_RUNTIME_FAILED with runc\'s message', async () => {
  const err = await rejection(adapterWith(`state) echo 'time="t" level=error msg="permission denied"' >&2; exit 1 ;;`).inspect('web'));
  expect(err).toMatchObject({ code: 'ERR_RUNTIME_FAILED', message: 'runc state of web failed: permission denied' });
});

test('onNotify is refused: runc keeps CRIU notifications to itself', async () => {
  const err = await rejection(adapterWith(NOT_FOUND).checkpoint({ runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'i'), onNotify: () => true }));
  expect(err.code).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(err.hint).toMatch(/pause\(\)/);
});

test('a failed dump is ERR_CRIU_DUMP_FAILED quoting the CRIU log, without the harmless RLIMIT line', async () => {
  sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ process: { terminal: false }, root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'pid' }] } }));
  const state = JSON.stringify({ id: 'web', pid: sleeper.pid, status: 'running', bundle, rootfs: `${bundle}/rootfs`, created: 't' });
  const log = [
    "(00.038469) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
    '(00.046535) 12559 fdinfo 2: pos: 0 flags: 100001/0',
    "(00.046545) Error (criu/files-reg.c:1790): Can't lookup mount=27 for fd=2 path=/tmp/rx/run.err",
    '(00.110526) Error (criu/cr-dump.c:1975): Dumping FAILED.',
  ];
  writeFileSync(join(dir, 'dump.log'), `${log.join('\n')}\n`);
  const adapter = adapterWith(`state) echo '${state}' ;;
checkpoint) cp ${join(dir, 'dump.log')} "$work/dump.log"; echo 'time="t" level=error msg="criu failed: type NOTIFY errno 0"' >&2; exit 1 ;;`);
  const err = await rejection(adapter.checkpoint({ runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'images'), workDir: join(dir, 'work') }));
  expect(err.code).toBe('ERR_CRIU_DUMP_FAILED');
  expect(err.details.logPath).toBe(join(dir, 'work', 'dump.log'));
  expect(err.message).toContain("Can't lookup mount=27");
  expect(err.message).not.toContain('RLIMIT_NOFILE');
  expect(err.details.toolError).toBe('criu failed: type NOTIFY errno 0');
});

test("a dump given the caller's earlier read (a move's) takes it: no `runc state`, no read of the interfaces", async () => {
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  const nsPath = '/run/netns/ferry-ct-web';
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'network', path: nsPath }] } }));
  const calls = join(dir, 'calls');
  const adapter = adapterWith(`state) echo state >> ${calls}; exit 1 ;;
checkpoint) echo checkpoint >> ${calls} ;;`);
  const interfaces = [{ ifname: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, addresses: [{ ifname: 'eth0', family: 'inet' as const, address: '10.0.0.2', prefixLength: 24 }] }];
  const container = { ref: { runtime: 'runc' as const, id: 'web' }, state: 'running' as const, pid: process.pid, bundle, netns: { path: nsPath, addresses: [] } };
  const images = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: 'web' }, { imagesDir: images, known: { container, network: { nsPath, interfaces } } });
  expect(readFileSync(calls, 'utf8')).toBe('checkpoint\n');
  const record = JSON.parse(readFileSync(join(images, 'ferry-container.json'), 'utf8'));
  expect(record.netns).toEqual({ path: nsPath, interfaces });
  // Another container's read is not taken for this one.
  await expect(adapter.checkpoint({ runtime: 'runc', id: 'db' }, { imagesDir: join(dir, 'images2'), known: { container, network: { nsPath, interfaces } } })).rejects.toMatchObject({ code: 'ERR_RUNTIME_FAILED' });
  expect(readFileSync(calls, 'utf8')).toBe('checkpoint\nstate\n');
});

test("the fence takes the caller's read of the container, unless the namespace is reached through the init's pid", async () => {
  const calls = join(dir, 'calls');
  const nsenter = join(dir, 'nsenter');
  writeFileSync(
    nsenter,
    ['#!/bin/sh', `echo "nsenter $*" >> ${calls}`, 'case "$*" in', `  *" -j addr show") echo '[{"ifname":"eth0","link_type":"ether","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24}]}]' ;;`, '  *" -batch -") cat > /dev/null ;;', 'esac', ''].join('\n'),
    { mode: 0o755 },
  );
  const runc = join(dir, 'runc');
  writeFileSync(runc, `#!/bin/sh\necho "runc $*" >> ${calls}\nexit 1\n`, { mode: 0o755 });
  const adapter = new RuncAdapter({ runcPath: runc, nsenterPath: nsenter, runcRoot: join(dir, 'runc-root'), stateDir: join(dir, 'state') });
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  const config = (path?: string) => writeFileSync(join(bundle, 'config.json'), JSON.stringify({ linux: { namespaces: [{ type: 'network', ...(path ? { path } : {}) }] } }));
  // As the move read it (describe: the namespace's path when the config names one).
  const known = { ref: { runtime: 'runc' as const, id: 'web' }, state: 'running' as const, pid: process.pid, bundle, netns: { path: '/proc/self/ns/net', addresses: [] } };

  config('/proc/self/ns/net');
  const fence = await adapter.fenceNetwork('web', { container: known });
  expect(fence).toMatchObject({ kind: 'links-down', interfaces: ['eth0'] });
  expect(readFileSync(calls, 'utf8')).not.toMatch(/^runc/m);
  expect(readFileSync(calls, 'utf8')).toMatch(/ -j addr show$/m);

  // With the interfaces read right before the freeze (a move's refreshNetwork), they are not read again.
  writeFileSync(calls, '');
  const network = { nsPath: '/proc/self/ns/net', interfaces: [{ ifname: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, addresses: [] }, { ifname: 'eth1', mac: '02:00:00:00:00:02', mtu: 1500, addresses: [] }] };
  expect(await adapter.fenceNetwork('web', { container: known, network })).toMatchObject({ kind: 'links-down', interfaces: ['eth0', 'eth1'] });
  expect(readFileSync(calls, 'utf8')).not.toMatch(/addr show|^runc/m);
  expect(readFileSync(calls, 'utf8')).toMatch(/ -batch -$/m);
  // A read of another namespace is not taken for this one.
  writeFileSync(calls, '');
  await adapter.fenceNetwork('web', { container: known, network: { ...network, nsPath: '/run/netns/other' } });
  expect(readFileSync(calls, 'utf8')).toMatch(/ -j addr show$/m);

  config(undefined); // the namespace is /proc/PID/ns/net: asked of runc now, which fails here
  await expect(adapter.fenceNetwork('web', { container: { ...known, netns: { addresses: [] } } })).rejects.toMatchObject({ code: 'ERR_RUNTIME_FAILED' });
  expect(readFileSync(calls, 'utf8')).toMatch(/^runc .*state web$/m);
});

test('a restore under a taken name is refused before anything is created', async () => {
  const images = join(dir, 'images');
  mkdirSync(images);
  writeFileSync(join(images, 'inventory.img'), '');
  const state = JSON.stringify({ id: 'web', pid: 1, status: 'running', bundle: dir, rootfs: '', created: 't' });
  mkdirSync(join(dir, 'runc-root', 'web'), { recursive: true });
  writeFileSync(join(dir, 'runc-root', 'web', 'state.json'), '{}');
  const err = await rejection(adapterWith(`state) echo '${state}' ;;`).restore({ imagesDir: images, name: 'web' }));
  expect(err.code).toBe('ERR_RUNTIME_NAME_TAKEN');
});

test('a failed restore is ERR_CRIU_RESTORE_FAILED and removes the config.json copy it made', async () => {
  const images = join(dir, 'images');
  mkdirSync(images);
  writeFileSync(join(images, 'inventory.img'), '');
  writeCheckpointRecord(images, {
    format: RECORD_FORMAT,
    runtime: 'runc',
    id: 'web',
    bundle: join(dir, 'gone'),
    config: { root: { path: '/rootfs' }, linux: { cgroupsPath: '/ferry/web', namespaces: [{ type: 'pid' }] } },
    criu: { tcpEstablished: true, fileLocks: false, extUnixSk: false, leaveRunning: false },
    checkpointedAt: 't',
  });
  writeFileSync(join(dir, 'restore.log'), "(00.05) 1: Error (criu/sk-inet.c:1059): inet: Can't bind inet socket (id 3): Address already in use\n");
  const adapter = adapterWith(`${NOT_FOUND}
restore) echo "$@" > "$work/args"; cp ${join(dir, 'restore.log')} "$work/restore.log"; exit 1 ;;`);
  const err = await rejection(adapter.restore({ imagesDir: images, name: 'web2' }));
  expect(err.code).toBe('ERR_CRIU_RESTORE_FAILED');
  expect(err.message).toContain('Address already in use');
  const args = readFileSync(join(images, 'args'), 'utf8');
  // The bundle was gone, so the recorded config.json was written to a copy (with the cgroup renamed) and the
  // recorded --tcp-established repeated.
  expect(args).toContain(`--bundle ${join(dir, 'state', 'web2', 'bundle')}`);
  expect(args).toContain('--tcp-established');
  expect(existsSync(join(dir, 'state', 'web2'))).toBe(false);
});
