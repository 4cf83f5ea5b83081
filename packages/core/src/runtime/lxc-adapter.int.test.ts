/**
 * The LXC adapter against real LXC 5.0.2 and CRIU (root, provisioned host). Containers live in a temporary lxcpath
 * (what `-P` names), run the workload fixture in a busybox rootfs, and have a network namespace with loopback only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCleanups } from '../testing/cleanups';
import { startLxcContainer, type LxcContainerOptions, type LxcTestContainer } from '../testing/lxc-container';
import { readWorkloadState, verifyWorkloadMemory, waitForCounter } from '../testing/workload';
import { LxcAdapter } from './lxc-adapter';
import { createRuntimeRegistry } from './registry';
import { RECORD_FILE } from './checkpoint-record';
import { rejection } from '../testing/rejection';

jest.setTimeout(90_000);

const PREFIX = `lxc${process.env.JEST_WORKER_ID ?? '0'}i${process.pid % 10000}`;
let dir: string;
let lxcpath: string;
let adapter: LxcAdapter;
const cleanups: (() => Promise<void> | void)[] = [];
let seq = 0;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-lxc-int-'));
  lxcpath = join(dir, 'lxc');
  adapter = new LxcAdapter({ lxcPaths: [lxcpath] });
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

async function container(options: Partial<LxcContainerOptions> = {}): Promise<LxcTestContainer> {
  const c = await startLxcContainer({ name: `${PREFIX}-${++seq}`, lxcpath, memMib: 64, ...options });
  cleanups.push(() => c.stop());
  return c;
}


function frozen(c: LxcTestContainer): string {
  const pid = execFileSync('lxc-info', ['-P', c.lxcpath, '-n', c.name, '-p', '-H'], { encoding: 'utf8' }).trim();
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /:freezer:/.test(l))!;
  return readFileSync(join('/sys/fs/cgroup/freezer', line.split(':')[2]!, 'freezer.state'), 'utf8').trim();
}

test('finds containers in the given lxcpath with state, pid, directory and rootfs; the registry resolves lxc:NAME', async () => {
  const c = await container();
  const listed = await adapter.list();
  expect(listed.map((i) => i.ref)).toEqual([{ runtime: 'lxc', id: c.name }]);
  const info = await adapter.inspect(c.name);
  expect(info).toMatchObject({ state: 'running', pid: await c.pid(), bundle: c.dir, rootfs: join(c.dir, 'rootfs') });
  const registry = createRuntimeRegistry({ runc: false, lxc: { lxcPaths: [lxcpath] } });
  expect((await registry.findContainer(`lxc:${c.name}`)).container.ref).toEqual({ runtime: 'lxc', id: c.name });
  const missing = await rejection(adapter.inspect(`${PREFIX}-nothere`));
  expect(missing.code).toBe('ERR_RUNTIME_NOT_FOUND');
  expect(missing.hint).toMatch(/ferry ps/);
});

test('checkpoint (stop) and restore: memory intact, the counter goes on from where it was', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 3);
  const imagesDir = join(dir, 'images');
  const result = await adapter.checkpoint({ runtime: 'lxc', id: c.name }, { imagesDir });
  expect(result.container.state).toBe('stopped');
  expect(statSync(imagesDir).mode & 0o777).toBe(0o700);
  expect(existsSync(join(imagesDir, RECORD_FILE))).toBe(true);
  expect(result.stats.imageBytes).toBeGreaterThan(64 << 20);
  expect((await adapter.inspect(c.name)).state).toBe('stopped');
  const atCheckpoint = readWorkloadState(c.stateFile)!.counter;

  const restored = await adapter.restore({ imagesDir });
  expect(restored.container.state).toBe('running');
  const after = await waitForCounter(c.stateFile, atCheckpoint + 3);
  expect(after.counter).toBeGreaterThan(atCheckpoint);
  expect(await verifyWorkloadMemory(restored.container.pid!, c.stateFile)).toBe('ok');
});

test('a frozen container checkpointed with leaveRunning stays frozen; its copy restored in another lxcpath runs', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 3);
  await adapter.pause(c.name);
  await adapter.pause(c.name); // idempotent
  expect((await adapter.inspect(c.name)).state).toBe('paused');
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'lxc', id: c.name }, { imagesDir, workDir: join(dir, 'work'), leaveRunning: true });
  expect(frozen(c)).toBe('FROZEN');
  const held = readWorkloadState(c.stateFile)!.counter;
  await new Promise((r) => setTimeout(r, 300));
  expect(readWorkloadState(c.stateFile)!.counter).toBe(held);

  // The "destination": another lxcpath, the container directory copied there as a migration would.
  const otherPath = join(dir, 'lxc2');
  const copy = join(dir, 'bundle');
  execFileSync('cp', ['-a', c.dir, copy]);
  const dest = new LxcAdapter({ lxcPaths: [otherPath] });
  const restored = await dest.restore({ imagesDir, workDir: join(dir, 'work2'), bundle: copy });
  cleanups.push(() => dest.remove(c.name));
  expect(existsSync(copy)).toBe(false); // moved into the lxcpath
  expect(restored.container).toMatchObject({ state: 'running', bundle: join(otherPath, c.name) });
  // The record names the source's directory; the copy's config points at its own rootfs.
  expect(readFileSync(join(otherPath, c.name, 'config'), 'utf8')).toContain(`dir:${join(otherPath, c.name, 'rootfs')}`);
  const stateFile = join(otherPath, c.name, 'rootfs', 'state', 'state');
  await waitForCounter(stateFile, held + 3);
  expect(await verifyWorkloadMemory(restored.container.pid!, stateFile)).toBe('ok');
  expect(readWorkloadState(c.stateFile)!.counter).toBe(held); // the source is still held

  await adapter.resume(c.name);
  await adapter.resume(c.name);
  await waitForCounter(c.stateFile, held + 2);
  await adapter.remove(c.name);
  expect(existsSync(c.dir)).toBe(false);
  await adapter.remove(c.name); // a missing container is not an error
});

test.each([
  ['lxc.tty.max = 1', 'lxc.tty.max', /lxc.tty.max = 0/],
  ['lxc.apparmor.profile = generated', 'lxc.apparmor.profile', /Remove `lxc.apparmor.profile`/],
  ['lxc.mount.entry = /lib lib none bind,ro,create=dir 0 0', 'lxc.mount.entry', /Copy what the container needs/],
])('refuses %s before anything is frozen, with the reason and a hint', async (line, key, hint) => {
  const c = await container({ extraConfig: [line] });
  const info = await adapter.inspect(c.name);
  const err = await rejection(adapter.checkpoint(info.ref, { imagesDir: join(dir, 'images') }));
  expect(err.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect(err.message).toContain(key);
  expect(err.hint).toMatch(hint);
  // Nothing was frozen or dumped: the container runs on, no images were written.
  expect(frozen(c)).toBe('THAWED');
  const before = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, before + 2);
  expect(existsSync(join(dir, 'images', 'inventory.img'))).toBe(false);
});

test('refuses a container whose process holds a terminal (its console), before anything is frozen', async () => {
  // Measured without the check: dump and restore "succeed", but the restored process's stdin is then /dev/pts/0 of
  // the host instead of the container's console.
  const c = await container({ consoleStdin: true });
  const info = await adapter.inspect(c.name);
  const err = await rejection(adapter.checkpoint(info.ref, { imagesDir: join(dir, 'images') }));
  expect(err.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect(err.message).toMatch(/holds a terminal \(fd 0 -> \/dev\/console\)/);
  expect(err.hint).toMatch(/stdio on \/dev\/null/);
  expect(frozen(c)).toBe('THAWED');
  expect(existsSync(join(dir, 'images', 'inventory.img'))).toBe(false);
});

test('a failed restore leaves nothing behind in the lxcpath; a bad name is bad input', async () => {
  const c = await container();
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'lxc', id: c.name }, { imagesDir, leaveRunning: true });
  unlinkSync(join(imagesDir, 'pstree.img'));
  const otherPath = join(dir, 'lxc2');
  const copy = join(dir, 'bundle');
  execFileSync('cp', ['-a', c.dir, copy]);
  const dest = new LxcAdapter({ lxcPaths: [otherPath] });
  const err = await rejection(dest.restore({ imagesDir, workDir: join(dir, 'work2'), bundle: copy }));
  expect(err.code).toBe('ERR_CRIU_RESTORE_FAILED');
  expect(err.message).toMatch(/CRIU/);
  expect(existsSync(join(otherPath, c.name))).toBe(false);
  expect((await adapter.inspect(c.name)).state).toBe('running');
  expect((await rejection(adapter.inspect('-rf'))).code).toBe('ERR_PRECHECK_BAD_INPUT');
});
