/**
 * Snapshots of a real runc container running the workload fixture (root, provisioned host, real CRIU): take three
 * while its counter advances, revert to the first, and check the counter went back and goes on and the memory
 * verifies; a revert to a snapshot that does not exist leaves the container alone. Everything the tests make is
 * removed afterwards, also on failure: the container through the harness (runc delete -f, netns, bundle) after the
 * adapter's remove (what a restore made for it).
 */
import { runCleanups } from '../testing/cleanups';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCriuClient } from '../criu/create-criu-client';
import { isFerryError, type FerryError } from '../model/ferry-error';
import { createRuntimeRegistry } from '../runtime/registry';
import { RuncAdapter } from '../runtime/runc-adapter';
import { startRuncContainer, type RuncContainer } from '../testing/runc-container';
import { isAlive, readWorkloadState, verifyWorkloadMemory, waitFor, waitForCounter } from '../testing/workload';
import { SnapshotStore } from './snapshot-store';

jest.setTimeout(60_000);

let dir: string;
let adapter: RuncAdapter;
let store: SnapshotStore;
let memTrack: boolean;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  memTrack = (await createCriuClient().features()).memTrack;
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-snap-int-'));
  const stateDir = join(dir, 'adapter-state');
  adapter = new RuncAdapter({ stateDir });
  store = new SnapshotStore({
    registry: createRuntimeRegistry({ runc: { stateDir } }),
    memTrack: async () => memTrack,
    root: join(dir, 'snapshots'),
    workRoot: join(dir, 'work'),
  });
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

async function container(): Promise<RuncContainer> {
  const c = await startRuncContainer({ memMib: 32, dirtyPagesPerSec: 2000 });
  cleanups.push(() => c.stop());
  cleanups.push(() => adapter.remove(c.name)); // runs first: whatever a revert made for the container
  return c;
}

const counter = (c: RuncContainer) => readWorkloadState(c.stateFile)?.counter ?? NaN;

test('three snapshots while the counter advances; revert to the first: the counter goes back and on, memory verifies', async () => {
  const c = await container();
  const taken: { id: string; before: number; after: number }[] = [];
  // Snapshots ~2 s apart (20 ticks/s): the restored counter is told apart from the second snapshot's by a margin
  // that a slow revert on a loaded machine does not eat up.
  for (let i = 0; i < 3; i++) {
    await waitForCounter(c.stateFile, counter(c) + 40);
    const before = counter(c);
    const t = await store.take(c.name);
    taken.push({ id: t.record.id, before, after: counter(c) });
    expect(t.record).toMatchObject({ seq: i + 1, container: c.name, runtime: 'runc' });
    expect(t.record.kind).toBe(memTrack && i > 0 ? 'incremental' : 'full');
    if (!memTrack) expect(t.record.reason).toBe('no memory tracking on this kernel');
    expect(t.record.frozenMs).toBeGreaterThan(0);
    expect(t.record.imageBytes).toBeGreaterThan(memTrack && i > 0 ? 0 : 32 * 1024 * 1024);
    expect(statSync(t.dir).mode & 0o777).toBe(0o700);
    expect(t.container.state).toBe('running');
  }
  // The counters at the three snapshots are apart: a revert to the first is visible.
  expect(taken[2]!.before).toBeGreaterThan(taken[0]!.after + 15);

  const listing = await store.list(c.name);
  expect(listing.snapshots.map((s) => [s.id, s.complete])).toEqual(taken.map((t) => [t.id, true]));
  for (const s of listing.snapshots) expect(s.diskBytes).toBeGreaterThan(memTrack ? 0 : 32 * 1024 * 1024);
  expect(listing.totalDiskBytes).toBe(listing.snapshots.reduce((sum, s) => sum + s.diskBytes, 0));

  await waitForCounter(c.stateFile, counter(c) + 5);
  const oldPid = await c.pid();
  const result = await store.revert(c.name, '1');
  expect(result.snapshot.id).toBe(taken[0]!.id);
  expect(result.stopped).toBe(true);
  const pid = result.started.container.pid!;
  expect(pid).not.toBe(oldPid);
  expect(await c.pid()).toBe(pid);
  expect(isAlive(oldPid)).toBe(false);
  expect(result.started.netns.mode).toBe('join'); // back in its own namespace, which it was the only one in

  // The restored workload writes the counter it had at the first snapshot, then counts on from there.
  const first = taken[0]!;
  let lowest = Infinity;
  await waitFor('the reverted counter to advance', () => {
    const now = counter(c);
    if (!Number.isNaN(now)) lowest = Math.min(lowest, now);
    return lowest < taken[1]!.before && now >= lowest + 5;
  });
  expect(lowest).toBeGreaterThanOrEqual(first.before);
  expect(lowest).toBeLessThan(taken[1]!.before);
  expect(await verifyWorkloadMemory(pid, c.stateFile)).toBe('ok');
  // The snapshot is still there, complete, to revert to again.
  expect((await store.list(c.name)).snapshots[0]).toMatchObject({ id: first.id, complete: true });
});

test('revert to a snapshot that does not exist: ERR_IMAGE_NOT_FOUND with a hint, the container untouched', async () => {
  const c = await container();
  const pid = await c.pid();
  const none = (await store.revert(c.name, '1').catch((e: unknown) => e)) as FerryError;
  expect(isFerryError(none, 'ERR_IMAGE_NOT_FOUND')).toBe(true);
  expect(none.hint).toContain(`ferry snapshot ${c.name}`);
  const t = await store.take(c.name);
  const missing = (await store.revert(c.name, '2').catch((e: unknown) => e)) as FerryError;
  expect(isFerryError(missing, 'ERR_IMAGE_NOT_FOUND')).toBe(true);
  expect(missing.message).toBe(`${c.name} has no snapshot 2`);
  expect(missing.hint).toContain(`ferry snapshot ls ${c.name}`);
  expect(missing.hint).toContain(t.record.id);
  expect(await c.pid()).toBe(pid);
  expect((await adapter.inspect(c.name)).state).toBe('running');
  const now = counter(c);
  await waitForCounter(c.stateFile, now + 3);
});
