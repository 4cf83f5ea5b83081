/**
 * `ferry ps`, `ferry checkpoint` and `ferry restore` on LXC containers as a user runs them: the BUILT CLI (`npx tsc
 * -b` first) against real LXC containers in a temporary lxcpath (`-P`, FERRY_LXC_PATH), root, provisioned host.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWorkloadState, runCleanups, startLxcContainer, verifyWorkloadMemory, waitForCounter, type LxcTestContainer } from '@ferry/core/testing';
import { ferry, ferryOk, jsonOutput } from '../testing/run-ferry';

jest.setTimeout(60_000);

let dir: string;
let lxcpath: string;
let seq = 0;
const cleanups: (() => Promise<void> | void)[] = [];
const savedLxcPath = process.env.FERRY_LXC_PATH;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-cli-lxc-'));
  lxcpath = join(dir, 'lxc');
  process.env.FERRY_LXC_PATH = lxcpath; // the built CLI inherits it (ferry() passes the environment on)
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
  if (savedLxcPath === undefined) delete process.env.FERRY_LXC_PATH;
  else process.env.FERRY_LXC_PATH = savedLxcPath;
});

async function container(extraConfig: string[] = []): Promise<LxcTestContainer> {
  const c = await startLxcContainer({ name: `lxccli${process.pid % 10000}-${++seq}`, lxcpath, memMib: 16, extraConfig });
  cleanups.push(() => c.stop());
  return c;
}

test('ferry ps lists LXC containers of a given lxcpath (-P) with runtime, state, pid and directory', async () => {
  const c = await container();
  delete process.env.FERRY_LXC_PATH; // only -P names the lxcpath here
  const table = (await ferryOk('ps', '-P', lxcpath)).stdout.split('\n');
  const row = table.find((line) => line.split(/\s+/)[1] === c.name);
  expect(row?.split(/\s+/)).toEqual(['lxc', c.name, 'running', String(await c.pid()), c.dir]);
  const json = JSON.parse((await ferryOk('ps', '--json', '-P', lxcpath)).stdout) as { containers: { ref: { runtime: string; id: string }; state: string }[] };
  expect(json.containers.find((e) => e.ref.id === c.name)).toMatchObject({ ref: { runtime: 'lxc', id: c.name }, state: 'running' });
  // Without the lxcpath, ferry does not see it.
  expect((await ferryOk('ps')).stdout).not.toContain(c.name);
});

test('checkpoint lxc:NAME stops it; restore DIR (runtime from the record) brings it back where it was', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 5);
  const images = join(dir, 'images');
  const out = jsonOutput(await ferryOk('checkpoint', `lxc:${c.name}`, '--dir', images, '--json'));
  expect(out).toMatchObject({ event: 'checkpoint', container: { runtime: 'lxc', id: c.name }, imagesDir: images, state: 'stopped' });
  expect(out.stats.imageBytes).toBeGreaterThan(16 * 1024 * 1024);
  expect(statSync(images).mode & 0o777).toBe(0o700);
  const atDump = readWorkloadState(c.stateFile)!.counter;

  const restored = jsonOutput(await ferryOk('restore', images, '--json'));
  expect(restored).toMatchObject({ event: 'restore', container: { ref: { runtime: 'lxc', id: c.name }, state: 'running' } });
  await waitForCounter(c.stateFile, atDump + 3);
  expect(await verifyWorkloadMemory(await c.pid(), c.stateFile)).toBe('ok');
});

test('a refused configuration: one line with code and hint, exit 3, nothing frozen or written', async () => {
  const c = await container(['lxc.apparmor.profile = generated']);
  const images = join(dir, 'images');
  const run = await ferry('checkpoint', c.name, '--dir', images);
  expect(run.status).toBe(3);
  expect(run.stderr).toMatch(/ERR_PRECHECK_UNSUPPORTED_CONFIG/);
  expect(run.stderr).toMatch(/lxc.apparmor.profile/);
  expect(run.stderr).toMatch(/hint: .*Remove `lxc.apparmor.profile`/);
  expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)/);
  expect(existsSync(join(images, 'inventory.img'))).toBe(false);
  const before = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, before + 2);
});

test('an unknown LXC container is ERR_RUNTIME_NOT_FOUND (exit 5) with a hint', async () => {
  const run = await ferry('checkpoint', 'lxc:lxc-no-such-ct');
  expect(run.status).toBe(5);
  expect(run.stderr).toMatch(/ERR_RUNTIME_NOT_FOUND/);
  expect(run.stderr).toMatch(/hint: .*ferry ps/);
});
