/**
 * CheckpointOptions.netnsPath against real runc, LXC and CRIU (root, provisioned host): the dump tool runs inside a
 * network namespace ferry created (only lo), so what CRIU listens on is reachable from there and from nowhere else,
 * and an ordinary dump with established TCP connections still restores.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLocalPort } from '../network/free-port';
import { runCleanups } from '../testing/cleanups';
import { startLxcContainer } from '../testing/lxc-container';
import { startNetnsTcpClient, startRuncContainer } from '../testing/runc-container';
import { readWorkloadState, verifyWorkloadMemory, waitFor, waitForCounter } from '../testing/workload';
import { LxcAdapter } from './lxc-adapter';
import { netnsInode } from './network-fence';
import { RuncAdapter } from './runc-adapter';
import type { RuntimeAdapter } from './runtime-adapter';
import type { ContainerRef } from '../model/container';
import { rejection } from '../testing/rejection';

jest.setTimeout(120_000);

const PREFIX = /^[a-z]{1,8}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? process.env.FERRY_E2E_PREFIX! : 'ferryt';
let dir: string;
let seq = 0;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-dump-netns-'));
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

/** A network namespace with lo up and nothing else, as ferry makes one for its dump tools. */
function privateNetns(): string {
  const name = `${PREFIX}-dumpns-${process.pid}-${++seq}`;
  execFileSync('ip', ['netns', 'add', name]);
  cleanups.push(() => execFileSync('ip', ['netns', 'delete', name]));
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/run/netns/${name}`;
}

/** How a TCP connect to 127.0.0.1:port from this process's network namespace ends. */
function connectFromHere(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A client inside the namespace that connects and holds the connection open; resolves once it is connected. */
async function holdConnectionInside(nsPath: string, port: number): Promise<ChildProcess> {
  const script = `const s = require('net').connect(${port}, '127.0.0.1', () => console.log('connected'));
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
setInterval(() => {}, 1000);`;
  const child = spawn('nsenter', [`--net=${nsPath}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  await waitFor('the client inside the namespace to connect', () => (/connected|error/.test(out) ? out : undefined), 10_000);
  expect(out).toContain('connected');
  return child;
}

/** A lazy dump of `ref` whose tool runs in a new private namespace; resolves once its page server is ready. */
async function lazyDumpInNetns(adapter: RuntimeAdapter, ref: ContainerRef) {
  const nsPath = privateNetns();
  const port = await freeLocalPort();
  const stop = new AbortController();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const lazyPages = { address: '127.0.0.1', port, onReady: () => ready() };
  const dump = adapter.checkpoint(ref, { imagesDir: join(dir, 'images'), workDir: join(dir, 'work'), lazyPages, netnsPath: nsPath, signal: stop.signal });
  dump.catch(() => undefined);
  await Promise.race([isReady, dump.then(() => Promise.reject(new Error('the lazy dump ended before it was ready')))]);
  return { nsPath, port, stop, dump };
}

function listensInside(nsPath: string, port: number): boolean {
  return execFileSync('nsenter', [`--net=${nsPath}`, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8' }).includes(`:${port}`);
}


test('a namespace made with `ip netns add` is recognised; other nsfs files and plain files are not', () => {
  const nsPath = privateNetns();
  expect(netnsInode(nsPath)).toEqual(expect.any(Number));
  expect(netnsInode(nsPath)).not.toBe(netnsInode('/proc/self/ns/net'));
  expect(netnsInode('/proc/self/ns/mnt')).toBeUndefined();
});

test('runc: a lazy dump run in a private namespace serves its pages there only; aborting it lets the container run on', async () => {
  const adapter = new RuncAdapter({ stateDir: join(dir, 'state') });
  const c = await startRuncContainer({ memMib: 16, port: 0 });
  cleanups.push(() => c.stop());
  await waitForCounter(c.stateFile, 2);
  const { nsPath, port, stop, dump } = await lazyDumpInNetns(adapter, { runtime: 'runc', id: c.name });

  expect(listensInside(nsPath, port)).toBe(true);
  expect(await connectFromHere(port)).toBe('ECONNREFUSED');
  const client = await holdConnectionInside(nsPath, port);

  stop.abort();
  expect((await rejection(dump)).code).toBe('ERR_ABORTED');
  client.kill('SIGKILL');
  const at = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, at + 3);
  expect((await adapter.inspect(c.name)).state).toBe('running');
  expect(await verifyWorkloadMemory(await c.pid(), c.stateFile)).toBe('ok');
});

test('runc: a dump run in a private namespace keeps an established TCP connection across checkpoint and restore', async () => {
  const adapter = new RuncAdapter({ stateDir: join(dir, 'state') });
  const c = await startRuncContainer({ memMib: 16 });
  cleanups.push(() => c.stop());
  const tcp = startNetnsTcpClient(c.netnsPath, c.address, c.port);
  cleanups.push(() => tcp.stop());
  await tcp.waitFor(/tick \d+/);
  const images = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: images, tcpEstablished: true, netnsPath: privateNetns() });
  const ticksAtDump = tcp.lastTick();

  const name = `${c.name}-r`;
  cleanups.push(() => adapter.remove(name));
  const restored = await adapter.restore({ imagesDir: images, name, workDir: join(dir, 'work') });
  expect(restored.container.state).toBe('running');
  tcp.send('after');
  await tcp.waitFor(/echo after/);
  await tcp.waitFor(new RegExp(`tick ${ticksAtDump + 3}\\b`));
  expect(tcp.process.exitCode).toBeNull();
  expect(await verifyWorkloadMemory(restored.container.pid!, c.stateFile)).toBe('ok');
});

describe('LXC', () => {
  let lxcpath: string;
  let adapter: LxcAdapter;
  beforeEach(() => {
    lxcpath = join(dir, 'lxc');
    adapter = new LxcAdapter({ lxcPaths: [lxcpath] });
  });

  test('a lazy dump whose CRIU runs in a private namespace is ready there (the listener is watched in CRIU\'s namespace) and not reachable from here', async () => {
    const c = await startLxcContainer({ name: `${PREFIX}l${process.pid % 10000}-${++seq}`, lxcpath, memMib: 16 });
    cleanups.push(() => c.stop());
    const { nsPath, port, stop, dump } = await lazyDumpInNetns(adapter, { runtime: 'lxc', id: c.name });
    expect(listensInside(nsPath, port)).toBe(true);
    expect(await connectFromHere(port)).toBe('ECONNREFUSED');

    stop.abort();
    expect((await rejection(dump)).code).toBe('ERR_ABORTED');
    const at = readWorkloadState(c.stateFile)!.counter;
    await waitForCounter(c.stateFile, at + 3);
    expect((await adapter.inspect(c.name)).state).toBe('running');
  });

  test('a dump run in a private namespace keeps an established TCP connection (both ends in the container) across checkpoint and restore', async () => {
    const port = 8080;
    const c = await startLxcContainer({ name: `${PREFIX}l${process.pid % 10000}-${++seq}`, lxcpath, memMib: 16, port });
    cleanups.push(() => c.stop());
    // A client inside the container, in a session of its own and reparented to the container's init (so CRIU dumps it
    // with the tree), talking over lo (which LXC leaves down in an `empty` network).
    const pipeline = `sleep 100000 </dev/null 2>/dev/null | busybox nc 127.0.0.1 ${port} >/state/nc.out 2>&1`;
    const client = `ip link set lo up; busybox setsid sh -c '${pipeline}' </dev/null >/dev/null 2>&1 &`;
    execFileSync('lxc-attach', ['-P', lxcpath, '-n', c.name, '--', '/bin/sh', '-c', client], { stdio: 'ignore' });
    const ncOut = join(c.dir, 'rootfs', 'state', 'nc.out');
    const lastTick = () => Math.max(0, ...[...(existsSync(ncOut) ? readFileSync(ncOut, 'utf8') : '').matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
    await waitFor('ticks over the connection', () => lastTick() > 2, 10_000);

    const imagesDir = join(dir, 'images');
    await adapter.checkpoint({ runtime: 'lxc', id: c.name }, { imagesDir, tcpEstablished: true, netnsPath: privateNetns() });
    expect((await adapter.inspect(c.name)).state).toBe('stopped');
    const atDump = lastTick();
    const restored = await adapter.restore({ imagesDir });
    expect(restored.container.state).toBe('running');
    // The same connection goes on: new ticks arrive at the restored client.
    await waitFor(`tick ${atDump + 3} over the restored connection`, () => lastTick() >= atDump + 3, 15_000);
    expect(await verifyWorkloadMemory(restored.container.pid!, c.stateFile)).toBe('ok');
  });
});
