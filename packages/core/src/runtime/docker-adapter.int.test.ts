/**
 * The Docker adapter against a real dockerd of the test's own (vfs, no bridge, no iptables; see
 * testing/docker-daemon.ts), real runc and CRIU: a container holding memory and a counter is checkpointed and
 * restored with its state verified, held paused across a leave-running dump, refused up front when CRIU cannot
 * handle it, cleaned up after a failed restore; and no daemon at all (or a stuck one) is reported, not waited for.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TEST_IMAGE,
  dockerWorkloadArgs,
  readWorkloadState,
  runCleanups,
  startTestDockerd,
  verifyWorkloadMemory,
  waitFor,
  type Cleanup,
  type TestDockerd,
} from '../testing';
import { DockerAdapter } from './docker-adapter';
import { FerryError } from '../model/ferry-error';

jest.setTimeout(120_000);

let daemon: TestDockerd;
let adapter: DockerAdapter;
let dir: string;
let seq = 0;
const cleanups: Cleanup[] = [];

beforeAll(async () => {
  daemon = await startTestDockerd(`int${process.pid}`);
  adapter = new DockerAdapter({ dockerHost: daemon.dockerHost });
});
afterAll(async () => {
  await daemon?.stop();
  expect(existsSync(daemon.paths.dataRoot)).toBe(false);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(daemon.paths.dataRoot);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-dk-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

function run(extra: string[], memMib = 64): string {
  const name = `dk-int-${process.pid}-${++seq}`;
  daemon.docker(['run', '-d', '--name', name, '--network', 'none', ...extra, TEST_IMAGE, ...dockerWorkloadArgs(memMib)]);
  cleanups.push(() => void daemon.docker(['rm', '-f', name]));
  return name;
}

function pidOf(name: string): number {
  return Number(daemon.docker(['inspect', '-f', '{{.State.Pid}}', name]).trim());
}

/** The workload's state file, read through the container's root: the workload writes it inside the container. */
function counterOf(name: string): number {
  return readWorkloadState(`/proc/${pidOf(name)}/root/tmp/state`)?.counter ?? -1;
}

async function started(name: string): Promise<void> {
  await waitFor(`${name} to count`, () => counterOf(name) >= 2, 20_000, 50);
}

test('checkpoint and restore keep memory and counter; the container is Docker\'s again', async () => {
  const name = run([]);
  await started(name);
  const imagesDir = join(dir, 'images');
  const result = await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir });
  expect(result.container.state).toBe('stopped');
  expect(result.stats.imageBytes).toBeGreaterThan(64 << 20);
  expect(statSync(imagesDir).mode & 0o777).toBe(0o700);
  expect(statSync(join(imagesDir, 'ferry-container.json')).mode & 0o777).toBe(0o600);
  // CRIU ended it; Docker no longer has it.
  await expect(adapter.inspect(name)).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
  const dumped = JSON.parse(readFileSync(join(imagesDir, 'ferry-container.json'), 'utf8')) as { docker: { imageName: string } };
  expect(dumped.docker.imageName).toBe(TEST_IMAGE);

  const restored = await adapter.restore({ imagesDir });
  expect(restored.container).toMatchObject({ ref: { runtime: 'docker', id: name }, state: 'running' });
  const counterAtRestore = counterOf(name);
  await waitFor('the counter to continue', () => counterOf(name) > counterAtRestore + 3, 10_000, 50);
  expect(await verifyWorkloadMemory(pidOf(name), `/proc/${pidOf(name)}/root/tmp/state`)).toBe('ok');
  // Docker owns it: its own CLI sees it running, from the same image, and the checkpoint copy is gone.
  expect(daemon.docker(['inspect', '-f', '{{.State.Status}} {{.Config.Image}}', name]).trim()).toBe(`running ${TEST_IMAGE}`);
  expect(daemon.docker(['checkpoint', 'ls', name]).trim().split('\n')).toHaveLength(1);
  // The images were linked, not consumed: a second restore under another name works too.
  const again = await adapter.restore({ imagesDir, name: `${name}-2` });
  cleanups.push(() => adapter.remove(`${name}-2`));
  expect(again.container.state).toBe('running');
});

test('a dump whose runc runs in a private network namespace (CheckpointOptions.netnsPath) restores as usual', async () => {
  const ns = `${/^[a-z]{1,8}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? process.env.FERRY_E2E_PREFIX : 'ferryt'}-dkns-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  cleanups.push(() => void execFileSync('ip', ['netns', 'delete', ns]));
  // lo up: CRIU probes TCP repair over loopback in the namespace it runs in.
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const name = run([], 16);
  await started(name);
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir, netnsPath: `/run/netns/${ns}` });
  const restored = await adapter.restore({ imagesDir });
  expect(restored.container.state).toBe('running');
  const counterAtRestore = counterOf(name);
  await waitFor('the counter to continue', () => counterOf(name) > counterAtRestore + 3, 10_000, 50);
  expect(await verifyWorkloadMemory(pidOf(name), `/proc/${pidOf(name)}/root/tmp/state`)).toBe('ok');
});

test('the writable layer comes along: a file the container wrote, and one its process holds open', async () => {
  const name = `dk-int-${process.pid}-${++seq}`;
  // The workload inherits fd 3 on /tmp/held, a file of the container's writable layer: CRIU restores that fd only
  // if the file is there with the size it had.
  const script = `echo hello > /tmp/greeting; echo 1234567 > /tmp/held; exec ${dockerWorkloadArgs(16).join(' ')} 3>>/tmp/held`;
  daemon.docker(['run', '-d', '--name', name, '--network', 'none', TEST_IMAGE, '/bin/sh', '-c', script]);
  cleanups.push(() => void daemon.docker(['rm', '-f', name]));
  await started(name);
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir });
  const record = JSON.parse(readFileSync(join(imagesDir, 'ferry-container.json'), 'utf8')) as { docker: { rootfsChanges: { files: number } } };
  expect(record.docker.rootfsChanges.files).toBeGreaterThanOrEqual(3); // /tmp, greeting, held (and the state file)
  // Restored under another name: a new container from the image, with the layer put back.
  const other = `${name}-moved`;
  cleanups.push(() => adapter.remove(other));
  const restored = await adapter.restore({ imagesDir, name: other });
  const pid = restored.container.pid!;
  expect(readFileSync(`/proc/${pid}/root/tmp/greeting`, 'utf8')).toBe('hello\n');
  expect(readlinkSync(`/proc/${pid}/fd/3`)).toBe('/tmp/held');
  const at = counterOf(other);
  await waitFor('the counter to continue', () => counterOf(other) > at + 2, 10_000, 50);
});

test('a container that changed nothing in its layer (docker diff answers null) checkpoints and restores', async () => {
  const name = `dk-int-${process.pid}-${++seq}`;
  daemon.docker(['run', '-d', '--name', name, '--network', 'none', TEST_IMAGE, '/bin/sleep', '100000']);
  cleanups.push(() => adapter.remove(name));
  expect(daemon.docker(['diff', name]).trim()).toBe('');
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir });
  const record = JSON.parse(readFileSync(join(imagesDir, 'ferry-container.json'), 'utf8')) as { docker: { rootfsChanges: { files: number } } };
  expect(record.docker.rootfsChanges.files).toBe(0);
  const restored = await adapter.restore({ imagesDir });
  expect(restored.container.state).toBe('running');
});

test('a paused container stays paused across a leave-running dump and counts on after resume (the migration hold)', async () => {
  const name = run([]);
  await started(name);
  await adapter.pause(name);
  await adapter.pause(name); // idempotent
  const frozenAt = counterOf(name);
  const result = await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir: join(dir, 'images'), leaveRunning: true });
  expect(result.container.state).toBe('paused');
  await new Promise((r) => setTimeout(r, 300));
  expect(counterOf(name)).toBe(frozenAt);
  await adapter.resume(name);
  await adapter.resume(name);
  await waitFor('the counter to move again', () => counterOf(name) > frozenAt + 2, 10_000, 50);
});

test.each([
  ['a terminal (-t)', ['-t'], /terminal/],
  ['a host bind mount', ['-v', `${tmpdir()}:/host-tmp`], /bind-mounts the host directory/],
  ['a volume', ['-v', 'ferry-dk-vol:/data'], /volume/],
])('%s is refused before anything is frozen, with a hint', async (_what, extra, reason) => {
  if (extra.includes('ferry-dk-vol:/data')) cleanups.push(() => void daemon.docker(['volume', 'rm', '-f', 'ferry-dk-vol']));
  const name = run(extra, 16);
  await started(name);
  const err = (await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir: join(dir, 'images') }).catch((e: unknown) => e)) as FerryError;
  expect(err).toBeInstanceOf(FerryError);
  expect(err.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect(err.message).toMatch(reason);
  expect(err.hint).toBeTruthy();
  expect(existsSync(join(dir, 'images'))).toBe(false); // nothing was dumped
  const before = counterOf(name);
  expect((await adapter.inspect(name)).state).toBe('running');
  await waitFor('it to keep counting', () => counterOf(name) > before, 5_000, 50);
});

test('a failed restore leaves no container behind and says why', async () => {
  const name = run([], 16);
  await started(name);
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir });
  unlinkSync(join(imagesDir, 'pstree.img'));
  const err = (await adapter.restore({ imagesDir }).catch((e: unknown) => e)) as FerryError;
  expect(err).toBeInstanceOf(FerryError);
  expect(err.code).toMatch(/^ERR_(CRIU|RUNTIME)_/);
  expect(err.hint).toBeTruthy();
  await expect(adapter.inspect(name)).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
  expect(daemon.docker(['ps', '-a', '--filter', `name=${name}`, '-q']).trim()).toBe('');
});

test('bad input: a missing container, a taken name, a record of another runtime', async () => {
  await expect(adapter.inspect('dk-no-such')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
  await expect(adapter.inspect('--rm')).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  const name = run([], 16);
  await started(name);
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'docker', id: name }, { imagesDir, leaveRunning: true });
  await expect(adapter.restore({ imagesDir })).rejects.toMatchObject({ code: 'ERR_RUNTIME_NAME_TAKEN' });
  await expect(adapter.restore({ imagesDir: dir })).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
});

describe('no daemon', () => {
  let stuck: Server | undefined;
  afterEach(() => stuck?.close());

  test('a missing socket makes the adapter unavailable at once', async () => {
    const none = new DockerAdapter({ dockerHost: `unix://${join(dir, 'none.sock')}` });
    expect(await none.availability()).toMatchObject({ usable: false, reason: expect.stringMatching(/no dockerd socket/) });
    await expect(none.list()).rejects.toMatchObject({ code: 'ERR_RUNTIME_UNAVAILABLE' });
    await expect(none.inspect('x')).rejects.toMatchObject({ code: 'ERR_RUNTIME_UNAVAILABLE' });
  });

  test('a daemon that never answers is given up after the availability timeout', async () => {
    const path = join(dir, 'stuck.sock');
    stuck = createServer(() => undefined).listen(path);
    await new Promise((r) => stuck!.once('listening', r));
    const adapterOfStuck = new DockerAdapter({ dockerHost: `unix://${path}`, availabilityTimeoutMs: 500, commandTimeoutMs: 800 });
    const t0 = Date.now();
    expect(await adapterOfStuck.availability()).toMatchObject({ usable: false });
    await expect(adapterOfStuck.list()).rejects.toMatchObject({ code: 'ERR_RUNTIME_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  test('DOCKER_HOST over tcp is refused with the reason', async () => {
    const remote = new DockerAdapter({ dockerHost: 'tcp://127.0.0.1:2375' });
    expect(await remote.availability()).toMatchObject({ usable: false, reason: expect.stringMatching(/unix socket/) });
  });
});

describe('a dockerd without --experimental (it cannot start a container from a checkpoint)', () => {
  let plain: TestDockerd | undefined;
  afterAll(async () => {
    await plain?.stop();
  });

  test('is reported unusable; a checkpoint that would end the container and a restore are refused before anything happens', async () => {
    plain = await startTestDockerd(`plain${process.pid}`, { experimental: false });
    const noExp = new DockerAdapter({ dockerHost: plain.dockerHost });
    expect(await noExp.availability()).toMatchObject({ usable: false, reason: expect.stringMatching(/--experimental/) });
    const name = `dk-plain-${process.pid}`;
    plain.docker(['run', '-d', '--name', name, '--network', 'none', TEST_IMAGE, ...dockerWorkloadArgs(16)]);
    const pid = () => Number(plain!.docker(['inspect', '-f', '{{.State.Pid}}', name]).trim());
    await waitFor('it to count', () => (readWorkloadState(`/proc/${pid()}/root/tmp/state`)?.counter ?? 0) >= 2, 20_000, 50);
    const imagesDir = join(dir, 'images');
    await expect(noExp.checkpoint({ runtime: 'docker', id: name }, { imagesDir })).rejects.toMatchObject({
      code: 'ERR_PRECHECK_FEATURE_MISSING',
      hint: expect.stringMatching(/--experimental/),
    });
    expect((await noExp.inspect(name)).state).toBe('running');
    // --leave-running loses nothing: allowed; its images cannot be restored here.
    await noExp.checkpoint({ runtime: 'docker', id: name }, { imagesDir, leaveRunning: true });
    await expect(noExp.restore({ imagesDir, name: `${name}-2` })).rejects.toMatchObject({ code: 'ERR_PRECHECK_FEATURE_MISSING' });
    expect(plain.docker(['ps', '-aq', '--filter', `name=${name}-2`]).trim()).toBe('');
  });
});
