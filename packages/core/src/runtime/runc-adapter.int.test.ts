/**
 * The runc adapter against real runc 1.1.5 and CRIU (root, provisioned host). Containers run the workload fixture
 * in a busybox rootfs, each in its own network namespace; the TCP client runs outside the container in that netns.
 */
import { runCleanups } from '../testing/cleanups';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, readWorkloadState, verifyWorkloadMemory, waitForCounter } from '../testing/workload';
import { startNetnsTcpClient, startRuncContainer, type NetnsTcpClient, type RuncContainer } from '../testing/runc-container';
import { createRuntimeRegistry } from './registry';
import { RuncAdapter } from './runc-adapter';
import { RuncCli } from './runc-cli';
import { RuncContainers } from './runc-containers';
import { RECORD_FILE } from './checkpoint-record';
import { rejection } from '../testing/rejection';

jest.setTimeout(60_000);

let dir: string;
let stateDir: string;
let adapter: RuncAdapter;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-runc-int-'));
  stateDir = join(dir, 'adapter-state');
  adapter = new RuncAdapter({ stateDir });
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

async function container(options: Parameters<typeof startRuncContainer>[0] = {}): Promise<RuncContainer> {
  const c = await startRuncContainer(options);
  cleanups.push(() => c.stop());
  return c;
}

function client(c: RuncContainer): NetnsTcpClient {
  const tcp = startNetnsTcpClient(c.netnsPath, c.address, c.port);
  cleanups.push(() => tcp.stop());
  return tcp;
}

/** Restored containers are removed through the adapter, so its netns and bundle copy go too. */
function removeLater(name: string): void {
  cleanups.push(() => adapter.remove(name));
}

function runcNames(): string[] {
  const text = execFileSync('runc', ['list', '--format', 'json'], { encoding: 'utf8' }).trim();
  return ((JSON.parse(text) as { id: string }[] | null) ?? []).map((c) => c.id);
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('checkpoints a 256 MiB container with an established TCP connection and restores it under a new name', async () => {
  const c = await container({ memMib: 256 });
  const tcp = client(c);
  await tcp.waitFor(/tick \d+/);
  tcp.send('before');
  await tcp.waitFor(/echo before/);

  // inspect and the registry see the container as it is.
  const info = await adapter.inspect(c.name);
  expect(info).toMatchObject({ ref: { runtime: 'runc', id: c.name }, state: 'running', bundle: c.bundle });
  expect(info.rootfs).toBe(c.config.root!.path);
  expect(info.freezerPath).toBe(`/sys/fs/cgroup/freezer/ferry-test/${c.name}`);
  expect(info.netns).toEqual({ path: c.netnsPath, addresses: [{ ifname: 'eth0', family: 'inet', address: '10.77.0.2/24' }] });
  expect((await adapter.list()).map((x) => x.ref.id)).toContain(c.name);
  const registry = createRuntimeRegistry({ runc: { stateDir } });
  expect((await registry.findContainer(`runc:${c.name}`)).container.pid).toBe(info.pid);
  expect((await registry.findContainer(c.name)).adapter.name).toBe('runc');

  const images = join(dir, 'images');
  const result = await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: images, tcpEstablished: true });
  expect(result.container.state).toBe('stopped');
  expect(runcNames()).not.toContain(c.name);
  expect(result.stats.imageBytes).toBeGreaterThan(256 << 20);
  expect(result.stats.totalMs).toBeGreaterThan(0);
  expect(existsSync(join(images, RECORD_FILE))).toBe(true);
  const atDump = readWorkloadState(c.stateFile)!.counter;
  const ticksAtDump = tcp.lastTick();
  await sleep(300);
  expect(readWorkloadState(c.stateFile)!.counter).toBe(atDump); // really stopped

  const newName = `${c.name}-r`;
  removeLater(newName);
  const restored = await adapter.restore({ imagesDir: images, name: newName, workDir: join(dir, 'work') });
  expect(restored.container).toMatchObject({ ref: { runtime: 'runc', id: newName }, state: 'running' });
  expect(restored.container.freezerPath).toBe(`/sys/fs/cgroup/freezer/ferry-test/${newName}`);
  // The name is taken now (runc's state file): a second restore under it is refused before anything happens.
  await expect(adapter.restore({ imagesDir: images, name: newName, workDir: join(dir, 'work-again') })).rejects.toMatchObject({ code: 'ERR_RUNTIME_NAME_TAKEN' });
  const pid = restored.container.pid!;
  expect(await verifyWorkloadMemory(pid, c.stateFile)).toBe('ok');
  expect((await waitForCounter(c.stateFile, atDump + 5)).counter).toBeGreaterThan(atDump);

  // The same TCP connection: ticks go on from where they were, and our lines are echoed.
  tcp.send('after');
  await tcp.waitFor(/echo after/);
  await tcp.waitFor(new RegExp(`tick ${ticksAtDump + 3}\\b`));
  expect(tcp.process.exitCode).toBeNull();
  // eslint-disable-next-line no-console
  console.log(`256 MiB: checkpoint ${result.stats.totalMs} ms (frozen ${result.stats.frozenMs} ms, ${result.stats.pagesWritten} pages), restore ${restored.restoreMs} ms`);
});

test("a running container's state read from runc's state file is what `runc state` says; a paused one is runc's answer", async () => {
  const c = await container({ memMib: 16 });
  const containers = new RuncContainers(new RuncCli({ runcPath: 'runc', nsenterPath: 'nsenter' }), { ipPath: 'ip', nsenterPath: 'nsenter' }, 10_000, () => undefined);
  const runcState = () => JSON.parse(execFileSync('runc', ['state', c.name], { encoding: 'utf8' })) as Record<string, unknown>;
  const { ociVersion: _version, owner: _owner, ...running } = runcState();
  expect(running.status).toBe('running');
  expect(await containers.runningState(c.name)).toEqual(running);

  execFileSync('runc', ['pause', c.name]);
  try {
    expect(await containers.runningState(c.name)).toMatchObject({ id: c.name, status: 'paused' });
  } finally {
    execFileSync('runc', ['resume', c.name]);
  }
  await expect(containers.runningState('ferry-no-such-container')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
});

test('a paused container stays frozen through checkpoint --leave-running; a copy restores beside it; resume continues it', async () => {
  const c = await container({ memMib: 64 });
  const tcp = client(c);
  await tcp.waitFor(/tick \d+/);

  await adapter.pause(c.name);
  await adapter.pause(c.name); // idempotent
  const atPause = readWorkloadState(c.stateFile)!.counter;
  const ticksAtPause = tcp.lastTick();
  const images = join(dir, 'images');
  const result = await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: images, leaveRunning: true, tcpEstablished: true });
  expect(result.container.state).toBe('paused');
  expect(readFileSync(join(result.container.freezerPath!, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
  await sleep(500);
  expect(readWorkloadState(c.stateFile)!.counter).toBe(atPause);
  expect(tcp.lastTick()).toBe(ticksAtPause);

  // A copy as a new container on the same host while the original is paused: the original holds the recorded
  // netns (and port 8080 in it), so the adapter creates another one with the recorded address. The copy gets its
  // own /state through a bundle of its own.
  const copyBundle = join(dir, 'copy-bundle');
  const copyState = join(dir, 'copy-state');
  mkdirSync(copyBundle);
  mkdirSync(copyState);
  const copyConfig = structuredClone(c.config);
  copyConfig.mounts!.find((m) => m.destination === '/state')!.source = copyState;
  writeFileSync(join(copyBundle, 'config.json'), JSON.stringify(copyConfig));
  const copyName = `${c.name}-copy`;
  removeLater(copyName);
  const copy = await adapter.restore({ imagesDir: images, name: copyName, bundle: copyBundle, workDir: join(dir, 'work-copy') });
  expect(copy.container.netns).toEqual({
    path: `/run/netns/ferry-ct-${copyName}`,
    addresses: [{ ifname: 'eth0', family: 'inet', address: '10.77.0.2/24' }],
  });
  const copyStateFile = join(copyState, 'state');
  expect((await waitForCounter(copyStateFile, atPause + 3)).counter).toBeGreaterThan(atPause);
  expect(await verifyWorkloadMemory(copy.container.pid!, copyStateFile)).toBe('ok');
  await adapter.remove(copyName);
  expect(runcNames()).not.toContain(copyName);
  expect(existsSync(`/run/netns/ferry-ct-${copyName}`)).toBe(false);
  expect(existsSync(join(stateDir, copyName))).toBe(false);

  // The original is still paused, then resumes with its memory, counter and connection intact.
  expect((await adapter.inspect(c.name)).state).toBe('paused');
  expect(readWorkloadState(c.stateFile)!.counter).toBe(atPause);
  await adapter.resume(c.name);
  await adapter.resume(c.name); // idempotent
  expect((await waitForCounter(c.stateFile, atPause + 3)).counter).toBeGreaterThan(atPause);
  expect(await verifyWorkloadMemory(await c.pid(), c.stateFile)).toBe('ok');
  tcp.send('resumed');
  await tcp.waitFor(/echo resumed/);
  await tcp.waitFor(new RegExp(`tick ${ticksAtPause + 2}\\b`));
});

test('remove() of a paused container (the migration\'s commit) stops it and its cgroup goes', async () => {
  const c = await container({ memMib: 8, port: 0 });
  const pid = await c.pid();
  await adapter.pause(c.name);
  await adapter.remove(c.name);
  expect(runcNames()).not.toContain(c.name);
  expect(isAlive(pid)).toBe(false); // a zombie at most: this VM's pid 1 reaps slowly
  expect(existsSync(`/sys/fs/cgroup/freezer/ferry-test/${c.name}`)).toBe(false);
  await adapter.remove(c.name); // a second time: nothing to do, no error
});

test('a fence is plain JSON that another adapter (another process) lifts, twice without harm; manualCommands name runc', async () => {
  const c = await container({ memMib: 8, port: 0 });
  const linkState = () => execFileSync('ip', ['-n', c.netnsName, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' });
  expect(linkState()).toMatch(/state UP|,UP[,>]/);
  const fence = await adapter.fenceNetwork(c.name);
  const journaled = JSON.stringify(fence);
  expect(JSON.parse(journaled)).toMatchObject({ runtime: 'runc', id: c.name, kind: 'links-down', netns: { path: c.netnsPath }, interfaces: ['eth0'] });
  expect(linkState()).not.toMatch(/,UP[,>]/);
  // CRIU's network lock as a frozen dump with TCP connections leaves it (criu-network-lock.ts): lifting removes it.
  const iptables = (...args: string[]) => execFileSync('ip', ['netns', 'exec', c.netnsName, 'iptables', '-w', ...args], { encoding: 'utf8' });
  iptables('-N', 'CRIU');
  iptables('-A', 'CRIU', '-m', 'mark', '!', '--mark', '0xC114', '-j', 'DROP');
  iptables('-I', 'INPUT', '-j', 'CRIU');
  iptables('-I', 'OUTPUT', '-j', 'CRIU');

  const recovery = new RuncAdapter({ stateDir });
  await recovery.unfenceNetwork(JSON.parse(journaled));
  expect(linkState()).toMatch(/,UP[,>]/);
  expect(iptables('-S')).not.toMatch(/CRIU/);
  await recovery.unfenceNetwork(JSON.parse(journaled)); // idempotent
  await fence.unfence(); // the old shape still works
  expect(linkState()).toMatch(/,UP[,>]/);
  expect(adapter.manualCommands(c.name)).toEqual({ thaw: `runc resume ${c.name}`, remove: `runc delete -f ${c.name}` });
});

test("links whose names ip would misread (a container's root may pick them: '#', quotes, keywords) go down all the same", async () => {
  const c = await container({ memMib: 8, port: 0 });
  const ipn = (...args: string[]) => execFileSync('ip', ['-n', c.netnsName, ...args], { encoding: 'utf8' });
  ipn('link', 'add', 'we#rd', 'type', 'veth', 'peer', 'name', 'q"te');
  ipn('link', 'add', 'dev', 'm', 'type', 'veth', 'peer', 'name', 'h'); // ip's abbreviations of master and help
  const links = ['eth0', 'we#rd', 'q"te', 'm', 'h'];
  links.slice(1).forEach((link, i) => {
    ipn('addr', 'add', `10.99.0.${i + 1}/24`, 'dev', link);
    ipn('link', 'set', 'dev', link, 'up');
  });
  const up = (link: string) => /,UP[,>]/.test(ipn('-o', 'link', 'show', 'dev', link));
  const fence = await adapter.fenceNetwork(c.name);
  expect([...(fence.kind === 'links-down' ? fence.interfaces : [])].sort()).toEqual([...links].sort());
  expect(links.map(up)).toEqual(links.map(() => false));
  await fence.unfence();
  expect(links.map(up)).toEqual(links.map(() => true));
});

test('checkpoint of a missing container is ERR_RUNTIME_NOT_FOUND with a hint', async () => {
  const err = await rejection(adapter.checkpoint({ runtime: 'runc', id: 'ferry-no-such-container' }, { imagesDir: join(dir, 'i') }));
  expect(err.code).toBe('ERR_RUNTIME_NOT_FOUND');
  expect(err.hint).toBe('Run `ferry ps` to see the containers ferry can find.');
  expect(existsSync(join(dir, 'i'))).toBe(false);
});

test('preflight refuses a container whose stdout is a host file, before anything is frozen', async () => {
  const c = await container({ memMib: 8, port: 0, stdoutFile: join(dir, 'stdout.log') });
  const info = await adapter.inspect(c.name);
  const err = await rejection(adapter.preflight(info));
  expect(err.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect(err.message).toMatch(/stdout is a host file/);
  const viaCheckpoint = await rejection(adapter.checkpoint(info.ref, { imagesDir: join(dir, 'images') }));
  expect(viaCheckpoint.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect((await adapter.inspect(c.name)).state).toBe('running');
});

test('failed restores leave no container, netns, process or mount behind', async () => {
  const c = await container({ memMib: 16, port: 0 });
  const images = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: images });
  // As on another host: the recorded netns path does not exist, so restore has to create one.
  execFileSync('ip', ['netns', 'delete', c.netnsName]);

  const copyImages = (to: string) => {
    mkdirSync(to);
    for (const f of readdirSync(images)) copyFileSync(join(images, f), join(to, f));
    return to;
  };
  const leftovers = (name: string, workDir: string) => ({
    runc: runcNames().includes(name),
    netns: existsSync(`/run/netns/ferry-ct-${name}`),
    stateDir: existsSync(join(stateDir, name)),
    cgroup: existsSync(`/sys/fs/cgroup/freezer/ferry-test/${name}`),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').includes(workDir),
  });
  const clean = { runc: false, netns: false, stateDir: false, cgroup: false, mounts: false };

  // 1. A corrupt image CRIU rejects: ERR_CRIU_RESTORE_FAILED quoting the log.
  const corrupt = copyImages(join(dir, 'corrupt'));
  const core = readdirSync(corrupt).find((f) => /^core-\d+\.img$/.test(f))!;
  const bytes = readFileSync(join(corrupt, core));
  bytes.fill(0, 0, 8); // both magics
  writeFileSync(join(corrupt, core), bytes);
  const name1 = `${c.name}-bad`;
  removeLater(name1);
  const work1 = join(dir, 'work1');
  const err = await rejection(adapter.restore({ imagesDir: corrupt, name: name1, workDir: work1 }));
  expect(err.code).toBe('ERR_CRIU_RESTORE_FAILED');
  expect(err.details.logPath).toBe(join(work1, 'restore.log'));
  expect((err.details.logExcerpt as string[]).join('\n')).toMatch(/Error/);
  expect(err.message).toContain('restore.log');
  expect(leftovers(name1, work1)).toEqual(clean);

  // 2. A truncated pages image: CRIU 4.2.1 spins forever; the deadline kills it and everything is cleaned up.
  const truncated = copyImages(join(dir, 'truncated'));
  const pages = readdirSync(truncated).find((f) => /^pages-\d+\.img$/.test(f))!;
  truncateSync(join(truncated, pages), 4096);
  const quick = new RuncAdapter({ stateDir, restoreTimeoutMs: 3_000 });
  const name2 = `${c.name}-hang`;
  cleanups.push(() => quick.remove(name2));
  const work2 = join(dir, 'work2');
  const started = Date.now();
  const timeout = await rejection(quick.restore({ imagesDir: truncated, name: name2, workDir: work2 }));
  expect(timeout.code).toBe('ERR_CRIU_TIMEOUT');
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(leftovers(name2, work2)).toEqual(clean);
  rmSync(join(work2, 'restore.log'), { force: true }); // grows fast while CRIU spins
});
