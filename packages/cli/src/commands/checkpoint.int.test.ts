/**
 * `ferry ps`, `ferry checkpoint` and `ferry restore` as a user runs them: the BUILT CLI (`npx tsc -b` first, as
 * scripts/test.sh does) against real runc containers running the workload fixture (root, provisioned host).
 * Every container a test makes is removed afterwards, also when the test fails: restored ones through the runc
 * adapter (their netns and bundle copy go too), the originals through the harness (runc delete -f, netns, bundle).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ferry, ferryOk, jsonOutput, type Run } from '../testing/run-ferry';
import { runcCliFixture } from '../testing/runc-cli-fixture.test-helpers';
import { isAlive, readWorkloadState, verifyWorkloadMemory, waitFor, waitForCounter } from '@ferry/core/testing';

jest.setTimeout(60_000);


interface PsEntry {
  ref: { runtime: string; id: string };
  state: string;
  pid?: number;
  bundle?: string;
}

async function psJson(): Promise<PsEntry[]> {
  const out = JSON.parse((await ferryOk('ps', '--json')).stdout) as { containers: PsEntry[]; problems: string[] };
  expect(Array.isArray(out.containers)).toBe(true);
  return out.containers;
}

const cli = runcCliFixture('ferry-cli-int-');
const { container, restoredLater } = cli;

test('ferry ps lists a runc container with runtime, state and pid; --json parses', async () => {
  const c = await container();
  const table = (await ferryOk('ps')).stdout.split('\n');
  expect(table[0]).toMatch(/^RUNTIME\s+NAME\s+STATE\s+PID\s+BUNDLE$/);
  const row = table.find((line) => line.split(/\s+/)[1] === c.name);
  expect(row).toBeDefined();
  const [runtime, , state, pid, bundle] = row!.split(/\s+/);
  expect([runtime, state, bundle]).toEqual(['runc', 'running', c.bundle]);
  expect(Number(pid)).toBe(await c.pid());

  const entry = (await psJson()).find((e) => e.ref.id === c.name);
  expect(entry).toMatchObject({ ref: { runtime: 'runc', id: c.name }, state: 'running', pid: await c.pid(), bundle: c.bundle });
});

test('checkpoint --leave-running --tcp-established --json: stats, a 0700 image dir, the container runs on', async () => {
  const c = await container();
  const images = join(cli.dir, 'images');
  const out = jsonOutput(await ferryOk('checkpoint', c.name, '--dir', images, '--leave-running', '--tcp-established', '--json'));
  expect(out).toMatchObject({ event: 'checkpoint', container: { runtime: 'runc', id: c.name }, imagesDir: images, leaveRunning: true, state: 'running' });
  expect(out.stats.frozenMs).toBeGreaterThan(0);
  expect(out.stats.totalMs).toBeGreaterThan(0);
  expect(out.stats.pagesWritten).toBeGreaterThan(0);
  expect(out.stats.imageBytes).toBeGreaterThan(16 * 1024 * 1024); // 16 MiB of workload memory
  expect(statSync(images).mode & 0o777).toBe(0o700);
  expect(existsSync(join(images, 'inventory.img'))).toBe(true);
  // CRIU writes its images 0644; they hold the process's memory (#14): every file is 0600.
  const loose = readdirSync(images).filter((f) => lstatSync(join(images, f)).isFile() && (lstatSync(join(images, f)).mode & 0o077) !== 0);
  expect(loose).toEqual([]);
  // The flag reached CRIU's side of the record (restore repeats it by default).
  expect(JSON.parse(readFileSync(join(images, 'ferry-container.json'), 'utf8')).criu).toMatchObject({ tcpEstablished: true, leaveRunning: true });

  const atCheckpoint = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, atCheckpoint + 3);
  expect((await psJson()).find((e) => e.ref.id === c.name)?.state).toBe('running');
});

test('checkpoint stops the container; restore --name NEW --json brings it back where it was', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 10);
  const images = join(cli.dir, 'images');
  const human = await ferryOk('checkpoint', c.name, '--dir', images);
  expect(human.stdout).toContain(`checkpointed runc:${c.name} into ${images}`);
  expect(human.stdout).toMatch(/frozen\s+[\d.]+ ms/);
  expect(human.stdout).toMatch(/dump time\s+[\d.]+ ms \(memory dump [\d.]+ ms, memory write [\d.]+ ms, \d+ pages written\)/);
  expect(human.stdout).toMatch(/image size\s+[\d.]+ MiB/);
  expect(human.stdout).toContain(`ferry restore ${images}`);
  expect((await psJson()).some((e) => e.ref.id === c.name)).toBe(false);
  const atDump = readWorkloadState(c.stateFile)!.counter;

  const name = `${c.name}-r`;
  restoredLater(name);
  const out = jsonOutput(await ferryOk('restore', images, '--name', name, '--json'));
  expect(out).toMatchObject({ event: 'restore', container: { ref: { runtime: 'runc', id: name }, state: 'running' }, imagesDir: images });
  expect(out.restoreMs).toBeGreaterThan(0);
  expect(out.stats).toMatchObject({ restoreMs: out.restoreMs });
  expect(out.stats.imageBytes).toBeGreaterThan(16 * 1024 * 1024);
  expect(out.stats.criuRestoreMs).toBeGreaterThan(0);
  expect(out.stats.pagesRestored).toBeGreaterThan(0);
  expect(out.checkpoint.frozenMs).toBeGreaterThan(0);

  // The counter continues from the dump (a fresh start would count from 1 again), with the memory intact.
  let lowest = Infinity;
  await waitFor('the restored counter to advance', () => {
    const counter = readWorkloadState(c.stateFile)?.counter;
    if (counter !== undefined) lowest = Math.min(lowest, counter);
    return counter !== undefined && counter >= atDump + 3;
  });
  expect(lowest).toBeGreaterThanOrEqual(atDump);
  const pid = out.container.pid as number;
  expect(await verifyWorkloadMemory(pid, c.stateFile)).toBe('ok');
  expect((await psJson()).find((e) => e.ref.id === name)).toMatchObject({ state: 'running', pid });
});

test('one image restores twice under two names (the images are not consumed)', async () => {
  const c = await container();
  const images = join(cli.dir, 'images');
  await ferryOk('checkpoint', c.name, '--dir', images, '--json');
  const names = [`${c.name}-a`, `${c.name}-b`];
  const pids: number[] = [];
  for (const name of names) {
    restoredLater(name);
    const run = await ferryOk('restore', images, '--name', name);
    const match = new RegExp(`^restored runc:${name} \\(pid (\\d+)\\) from ${images}$`, 'm').exec(run.stdout);
    expect(match).not.toBeNull();
    pids.push(Number(match![1]));
    expect(run.stdout).toMatch(/restore time\s+[\d.]+ ms \(CRIU [\d.]+ ms, forking [\d.]+ ms, \d+ pages restored\)/);
    expect(run.stdout).toMatch(/image size\s+[\d.]+ MiB/);
    expect(run.stdout).toMatch(/checkpoint\s+frozen [\d.]+ ms/);
  }
  expect(pids.every(isAlive)).toBe(true);
  const listed = await psJson();
  for (const [i, name] of names.entries()) expect(listed.find((e) => e.ref.id === name)).toMatchObject({ state: 'running', pid: pids[i] });
});

test('checkpoint of a missing container: ERR_RUNTIME_NOT_FOUND, a hint to run ferry ps, exit 5', async () => {
  const missing = `ferry-t-missing-${process.pid}`;
  const images = join(cli.dir, 'images');
  const run = await ferry('checkpoint', missing, '--dir', images);
  expect(run.status).toBe(5);
  expect(run.stderr).toContain('ERR_RUNTIME_NOT_FOUND');
  expect(run.stderr).toContain(missing);
  expect(run.stderr).toContain('`ferry ps`');
  expect(run.stdout).toBe('');
  expect(existsSync(images)).toBe(false); // nothing written for a container that is not there

  const asJson = await ferry('checkpoint', missing, '--dir', images, '--json');
  expect(asJson.status).toBe(5);
  expect(JSON.parse(asJson.stderr.trim())).toMatchObject({ event: 'error', error: { code: 'ERR_RUNTIME_NOT_FOUND', hint: expect.stringContaining('ferry ps') } });
});

test('restore of an empty directory: ERR_IMAGE_NOT_FOUND, exit 4', async () => {
  const empty = join(cli.dir, 'empty');
  mkdirSync(empty);
  const run = await ferry('restore', empty, '--name', `ferry-t-never-${process.pid}`);
  expect(run.status).toBe(4);
  expect(run.stderr).toContain('ERR_IMAGE_NOT_FOUND');
  expect(run.stderr).toContain(empty);
  expect(run.stdout).toBe('');

  const asJson = await ferry('restore', empty, '--json');
  expect(asJson.status).toBe(4);
  expect(JSON.parse(asJson.stderr.trim())).toMatchObject({ event: 'error', error: { code: 'ERR_IMAGE_NOT_FOUND' } });
});

test('checkpoint --dir: a planted symlink, an earlier checkpoint and empty text are refused before the freeze (#14)', async () => {
  const c = await container();
  const victim = join(cli.dir, 'victim');
  mkdirSync(victim, { mode: 0o755 });
  symlinkSync(victim, join(cli.dir, 'planted'));
  const viaLink = await ferry('checkpoint', c.name, '--dir', join(cli.dir, 'planted'), '--leave-running');
  expect(viaLink.status).toBe(3);
  expect(viaLink.stderr).toMatch(/^error ERR_PRECHECK_UNSAFE_PATH: .*is a symlink/);
  expect(statSync(victim).mode & 0o777).toBe(0o755);
  expect(readdirSync(victim)).toEqual([]);

  const earlier = join(cli.dir, 'earlier');
  await ferryOk('checkpoint', c.name, '--dir', earlier, '--leave-running');
  const before = readdirSync(earlier).sort();
  const again = await ferry('checkpoint', c.name, '--dir', earlier, '--leave-running');
  expect(again.status).toBe(3);
  expect(again.stderr).toMatch(/is not empty/);
  expect(again.stderr).toMatch(/hint: .*--allow-existing-dir/);
  expect(readdirSync(earlier).sort()).toEqual(before);

  const empty = await ferry('checkpoint', c.name, '--dir', '', '--leave-running');
  expect(empty.status).toBe(2);
  expect(empty.stderr).toMatch(/--dir is empty/);
  expect((await psJson()).find((e) => e.ref.id === c.name)?.state).toBe('running');

  await ferryOk('checkpoint', c.name, '--dir', earlier, '--leave-running', '--allow-existing-dir');
});
