/**
 * `ferry snapshot` (take, ls, revert, rm) and `ferry start --from` as a user runs them: the BUILT CLI (`npx tsc -b`
 * first) against real runc containers (root, provisioned host). Snapshots go to a temporary store (--store).
 * Every container a test makes is removed afterwards, also when the test fails: through the runc adapter first
 * (what a restore made: netns, bundle copy), then the harness (runc delete -f, netns, bundle).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ferry, ferryOk, jsonOutput, type Run } from '../testing/run-ferry';
import { runcCliFixture } from '../testing/runc-cli-fixture.test-helpers';
import {
  queryService,
  readWorkloadState,
  startSlowStartContainer,
  verifyWorkloadMemory,
  waitFor,
  waitForCounter,
  type RuncContainer,
} from '@ferry/core/testing';

jest.setTimeout(60_000);


const cli = runcCliFixture('ferry-snap-cli-');
const { adapter, cleanups, restoredLater } = cli;
let store: string;

beforeEach(() => {
  store = join(cli.dir, 'snapshots');
});

async function workload(): Promise<RuncContainer> {
  const c = await cli.container();
  restoredLater(c.name);
  return c;
}

const counter = (c: RuncContainer) => readWorkloadState(c.stateFile)?.counter ?? NaN;

test('snapshot, snapshot ls, snapshot revert, snapshot rm; a missing snapshot is refused and nothing stops', async () => {
  const c = await workload();
  const counters: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    await waitForCounter(c.stateFile, counter(c) + 10);
    counters.push(counter(c));
    const args = i === 0 ? ['snapshot', c.name] : ['snapshot', 'take', c.name];
    const human = await ferryOk(...args, '--store', store);
    const m = new RegExp(`^snapshot (\\d{3}-\\d{8}T\\d{6}Z) of runc:${c.name} taken \\(full: no memory tracking on this kernel\\)$`, 'm').exec(
      human.stdout,
    );
    expect(m).not.toBeNull();
    ids.push(m![1]!);
    expect(human.stdout).toMatch(/frozen\s+[\d.]+ ms/);
    expect(human.stdout).toContain(`stored in     ${join(store, c.name, m![1]!)}`);
    expect(human.stdout).toContain('the container keeps running');
  }
  expect(statSync(join(store, c.name)).mode & 0o777).toBe(0o700);

  const table = (await ferryOk('snapshot', 'ls', c.name, '--store', store)).stdout.split('\n');
  expect(table[0]).toMatch(/^SNAPSHOT\s+TAKEN \(UTC\)\s+KIND\s+FROZEN\s+IMAGE\s+DISK$/);
  for (const [i, id] of ids.entries()) expect(table[i + 1]).toMatch(new RegExp(`^${id}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+full\\s+[\\d.]+ ms\\s+[\\d.]+ MiB\\s+[\\d.]+ MiB$`));
  expect(table[4]).toMatch(new RegExp(`^total [\\d.]+ MiB on disk in 3 snapshots \\(${join(store, c.name)}\\)$`));
  expect(table[5]).toBe('all full: no memory tracking on this kernel');
  const listed = jsonOutput(await ferryOk('snapshot', 'ls', c.name, '--store', store, '--json'));
  expect(listed.snapshots.map((s: { id: string }) => s.id)).toEqual(ids);
  expect(listed.snapshots[0]).toMatchObject({ kind: 'full', reason: 'no memory tracking on this kernel', complete: true, container: c.name });
  expect(listed.totalDiskBytes).toBe(listed.snapshots.reduce((sum: number, s: { diskBytes: number }) => sum + s.diskBytes, 0));
  expect(listed.totalDiskBytes).toBeGreaterThan(3 * 16 * 1024 * 1024);

  // A snapshot that does not exist: code, message and hint; the container runs on as it was.
  const pid = await c.pid();
  const missing = await ferry('snapshot', 'revert', c.name, '7', '--store', store, '--json');
  expect(missing.status).toBe(4);
  expect(JSON.parse(missing.stderr.trim())).toMatchObject({
    event: 'error',
    error: { code: 'ERR_IMAGE_NOT_FOUND', message: `${c.name} has no snapshot 7`, hint: expect.stringContaining(`ferry snapshot ls ${c.name}`) },
  });
  const human = await ferry('snapshot', 'revert', c.name, 'nope', '--store', store);
  expect(human.status).toBe(4);
  expect(human.stderr).toContain(`error ERR_IMAGE_NOT_FOUND: ${c.name} has no snapshot nope`);
  expect(human.stderr).toContain('hint: Run `ferry snapshot ls');
  expect(await c.pid()).toBe(pid);

  // Revert to the first: the counter goes back to where it was then and counts on; the memory verifies.
  const reverted = jsonOutput(await ferryOk('snapshot', 'revert', c.name, ids[0]!, '--store', store, '--json'));
  expect(reverted).toMatchObject({ event: 'revert', snapshot: { id: ids[0] }, container: { ref: { id: c.name }, state: 'running' }, stopped: true });
  expect(reverted.downtimeMs).toBeGreaterThanOrEqual(reverted.restoreMs);
  const newPid = reverted.container.pid as number;
  expect(newPid).not.toBe(pid);
  let lowest = Infinity;
  await waitFor('the counter to go back to the first snapshot and on', () => {
    const now = counter(c);
    if (!Number.isNaN(now)) lowest = Math.min(lowest, now);
    return lowest < counters[1]! && now >= lowest + 5;
  });
  expect(lowest).toBeGreaterThanOrEqual(counters[0]!);
  expect(await verifyWorkloadMemory(newPid, c.stateFile)).toBe('ok');

  const rm = await ferryOk('snapshot', 'rm', c.name, '2', '--store', store);
  expect(rm.stdout).toMatch(new RegExp(`^removed snapshot ${ids[1]} of ${c.name} \\([\\d.]+ MiB freed\\)$`, 'm'));
  expect(existsSync(join(store, c.name, ids[1]!))).toBe(false);
  expect(jsonOutput(await ferryOk('snapshot', 'ls', c.name, '--store', store, '--json')).snapshots.map((s: { id: string }) => s.id)).toEqual([ids[0], ids[2]]);
});

test('start --from IMAGE --count 3 --name-prefix: three copies of a slow-starting service answer; the image is untouched', async () => {
  const original = await startSlowStartContainer({ tableMib: 32, initMs: 1500 });
  cleanups.push(() => original.stop());
  const sum = (await queryService(original.netnsPath, original.address, original.port, 'sum')).reply;
  const images = join(cli.dir, 'images');
  await ferryOk('checkpoint', original.name, '--dir', images, '--json'); // the original stops; its namespace stays
  const files = readdirSync(images).sort();

  const prefix = `${original.name}-c`;
  for (let i = 1; i <= 3; i++) cleanups.push(() => adapter.remove(`${prefix}-${i}`));
  const out = jsonOutput(await ferryOk('start', '--from', images, '--count', '3', '--name-prefix', prefix, '--json'));
  expect(out).toMatchObject({ event: 'start', imagesDir: images });
  expect(out.containers.map((c: { container: { ref: { id: string }; state: string } }) => [c.container.ref.id, c.container.state])).toEqual([
    [`${prefix}-1`, 'running'],
    [`${prefix}-2`, 'running'],
    [`${prefix}-3`, 'running'],
  ]);
  expect(out.containers.map((c: { netns: { mode: string } }) => c.netns.mode)).toEqual(['join', 'own', 'own']);
  for (const c of out.containers as { container: { netns: { path: string } }; restoreMs: number }[]) {
    expect(c.restoreMs).toBeGreaterThan(0);
    const answer = await queryService(c.container.netns.path, original.address, original.port, 'get 99');
    expect(answer.verified).toBe(true);
    expect((await queryService(c.container.netns.path, original.address, original.port, 'sum')).reply).toBe(sum);
  }
  expect(readdirSync(images).sort()).toEqual(files); // no restore.log, no stats-restore: the image was only read

  // The names are taken now: a second start refuses before it starts anything.
  const again = await ferry('start', '--from', images, '--name', `${prefix}-2`);
  expect(again.status).toBe(5);
  expect(again.stderr).toContain('ERR_RUNTIME_NAME_TAKEN');
  const bad = await ferry('start', '--from', images, '--name', 'x', '--count', '2');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('--name-prefix x --count 2');
  const human = await ferryOk('start', '--from', images, '--name', `${prefix}-4`);
  cleanups.push(() => adapter.remove(`${prefix}-4`));
  expect(human.stdout).toMatch(new RegExp(`^started runc:${prefix}-4 \\(pid \\d+\\) in [\\d.]+ ms \\(CRIU [\\d.]+ ms\\), netns /run/netns/ferry-ct-${prefix}-4 \\(its own: `, 'm'));
  expect(human.stdout).toContain(`from          ${images} (`);
});
