import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { createRuntimeRegistry } from '../runtime/registry';
import type { CheckpointOptions } from '../runtime/runtime-adapter';
import { FakeRuntime } from '../testing/fake-runtime';
import { SnapshotStore } from './snapshot-store';

let dir: string;
let netns: string;
let runtime: FakeRuntime;
let clock: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-snapstore-'));
  netns = join(dir, 'netns-web');
  writeFileSync(netns, '');
  runtime = new FakeRuntime();
  runtime.add('web', netns);
  clock = Date.parse('2026-11-12T10:15:30Z');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function store(memTrack: () => Promise<boolean> = async () => false): SnapshotStore {
  return new SnapshotStore({
    registry: createRuntimeRegistry({ runc: false, docker: false, adapters: [runtime] }),
    memTrack,
    root: join(dir, 'snapshots'),
    workRoot: join(dir, 'work'),
    now: () => new Date((clock += 60_000)),
  });
}

const mode = (path: string) => statSync(path).mode & 0o777;

test('take: NNN-TIME directories, 0700, a record written last, the container keeps running; full without memory tracking', async () => {
  const s = store();
  const first = await s.take('web');
  const second = await s.take('runc:web');
  expect(first.record.id).toBe('001-20261112T101630Z');
  expect(second.record.id).toBe('002-20261112T101730Z');
  expect(first.dir).toBe(join(dir, 'snapshots', 'web', first.record.id));
  for (const path of [join(dir, 'snapshots'), join(dir, 'snapshots', 'web'), first.dir]) expect(mode(path)).toBe(0o700);
  expect(first.record).toMatchObject({
    format: 'ferry-snapshot/1',
    seq: 1,
    container: 'web',
    runtime: 'runc',
    takenAt: '2026-11-12T10:16:30.000Z',
    kind: 'full',
    reason: 'no memory tracking on this kernel',
    frozenMs: 7.5,
    dumpMs: 12,
    tcpEstablished: false,
  });
  expect(first.record.imageBytes).toBeGreaterThan(64 * 1024);
  expect(first.record.parent).toBeUndefined();
  expect(JSON.parse(readFileSync(join(first.dir, 'ferry-snapshot.json'), 'utf8'))).toEqual(first.record);
  expect(mode(join(first.dir, 'ferry-snapshot.json'))).toBe(0o600);
  const checkpoints = runtime.calls.filter((c) => c.op === 'checkpoint').map((c) => c.options as CheckpointOptions);
  expect(checkpoints.every((o) => o.leaveRunning === true && o.parentImage === undefined)).toBe(true);
  expect(runtime.containers.get('web')?.state).toBe('running');
});

test('take with memory tracking: full first, then incremental on the last snapshot of the same instance', async () => {
  const s = store(async () => true);
  const a = await s.take('web');
  const b = await s.take('web');
  expect(a.record).toMatchObject({ kind: 'full', reason: 'first snapshot of this container' });
  expect(b.record).toMatchObject({ kind: 'incremental', parent: a.record.id, reason: `pages changed since ${a.record.id}` });
  const parentImages = runtime.calls.filter((c) => c.op === 'checkpoint').map((c) => (c.options as CheckpointOptions).parentImage);
  expect(parentImages).toEqual([undefined, `../${a.record.id}`]);
  // After a revert the container is another instance: the next snapshot is full again.
  await s.revert('web', a.record.id);
  const c = await s.take('web');
  expect(c.record).toMatchObject({ kind: 'full', reason: 'the container was restarted or reverted since the last snapshot' });
  // A feature check that fails means full snapshots, with the reason.
  const d = await store(async () => Promise.reject(new Error('criu swrk: not found'))).take('web');
  expect(d.record).toMatchObject({ kind: 'full', reason: 'memory tracking unknown (criu swrk: not found)' });
});

test('a failed take leaves no directory behind and the next number is still free', async () => {
  const s = store();
  runtime.failCheckpoint = new FerryError('ERR_CRIU_DUMP_FAILED', 'injected');
  await expect(s.take('web')).rejects.toMatchObject({ code: 'ERR_CRIU_DUMP_FAILED' });
  expect(readdirSync(join(dir, 'snapshots', 'web'))).toEqual([]);
  runtime.failCheckpoint = undefined;
  expect((await s.take('web')).record.seq).toBe(1);
  await expect(s.take('nosuch')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
});

test('ls: ordered by number, disk used by each and in total, incomplete ones marked; none: empty', async () => {
  const s = store();
  expect(await s.list('web')).toEqual({ container: 'web', dir: join(dir, 'snapshots', 'web'), snapshots: [], totalDiskBytes: 0 });
  for (let i = 0; i < 3; i++) await s.take('web');
  mkdirSync(join(dir, 'snapshots', 'web', '004-20261112T120000Z')); // a take that was interrupted
  writeFileSync(join(dir, 'snapshots', 'web', 'notes.txt'), 'not a snapshot');
  const listing = await s.list('runc:web');
  expect(listing.snapshots.map((x) => [x.seq, x.complete])).toEqual([
    [1, true],
    [2, true],
    [3, true],
    [4, false],
  ]);
  const complete = listing.snapshots.filter((x) => x.complete);
  for (const x of complete) expect(x.diskBytes).toBeGreaterThanOrEqual(64 * 1024);
  expect(listing.totalDiskBytes).toBe(listing.snapshots.reduce((sum, x) => sum + x.diskBytes, 0));
  expect((await s.take('web')).record.seq).toBe(5); // numbers are never reused
});

test('revert: the container is removed and the snapshot started under the same name; the snapshot is not written', async () => {
  const s = store();
  const first = await s.take('web');
  await s.take('web');
  const before = readdirSync(first.dir).map((f) => `${f}:${statSync(join(first.dir, f)).mtimeMs}`);
  const oldPid = runtime.containers.get('web')!.pid;
  const result = await s.revert('web', '1');
  expect(result.snapshot.id).toBe(first.record.id);
  expect(result.stopped).toBe(true);
  expect(result.started.container.ref.id).toBe('web');
  expect(result.started.container.pid).not.toBe(oldPid);
  expect(result.started.netns.mode).toBe('join'); // its own namespace again: it was the only one in it
  const ops = runtime.calls.filter((c) => c.op !== 'checkpoint').map((c) => c.op);
  expect(ops).toEqual(['remove', 'restore']);
  expect(readdirSync(first.dir).map((f) => `${f}:${statSync(join(first.dir, f)).mtimeMs}`)).toEqual(before);
  // A container that is gone can be brought back too.
  runtime.containers.delete('web');
  expect((await s.revert('web', 'latest')).stopped).toBe(false);
});

test('revert to a missing snapshot: ERR_IMAGE_NOT_FOUND with the choices, the container untouched', async () => {
  const s = store();
  const err = await s.revert('web', '1').catch((e: FerryError) => e);
  expect(err).toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND', message: expect.stringContaining('no snapshots at all') });
  expect((err as FerryError).hint).toContain('ferry snapshot web');
  const taken = await s.take('web');
  const missing = await s.revert('web', '7').catch((e: FerryError) => e);
  expect(missing).toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND', message: 'web has no snapshot 7' });
  expect((missing as FerryError).hint).toContain(`ferry snapshot ls web`);
  expect((missing as FerryError).hint).toContain(taken.record.id);
  expect(runtime.calls.filter((c) => c.op === 'remove' || c.op === 'restore')).toEqual([]);
  expect(runtime.containers.get('web')?.state).toBe('running');
});

test('revert whose restore fails: a clear error, the container stopped, the snapshot intact and usable', async () => {
  const s = store();
  const taken = await s.take('web');
  runtime.failRestore = new FerryError('ERR_CRIU_RESTORE_FAILED', 'runc restore of web failed: injected (log: /x/restore.log)', { hint: 'Read /x/restore.log.' });
  const err = (await s.revert('web', taken.record.id).catch((e: FerryError) => e)) as FerryError;
  expect(err.code).toBe('ERR_CRIU_RESTORE_FAILED');
  expect(err.message).toContain(`web was stopped, but restoring snapshot ${taken.record.id} failed, so web is not running now`);
  expect(err.message).toContain(`The snapshot is intact (${taken.dir})`);
  expect(err.message).toContain('injected');
  expect(err.hint).toContain(`ferry snapshot revert web ${taken.record.id}`);
  expect(err.hint).toContain('Read /x/restore.log.');
  expect(runtime.containers.has('web')).toBe(false);
  runtime.failRestore = undefined;
  expect((await s.revert('web', taken.record.id)).started.container.ref.id).toBe('web');
});

test('revert refuses before stopping anything when an incremental snapshot lost its parent', async () => {
  const s = store(async () => true);
  const a = await s.take('web');
  const b = await s.take('web');
  rmSync(join(a.dir, 'ferry-snapshot.json')); // the parent became incomplete
  await expect(s.revert('web', b.record.id)).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND', message: expect.stringContaining(`incremental on ${a.record.id}`) });
  expect(runtime.calls.some((c) => c.op === 'remove')).toBe(false);
});

test('rm: deletes one snapshot, incomplete ones too; refuses a parent others need', async () => {
  const s = store(async () => true);
  const a = await s.take('web');
  const b = await s.take('web');
  await expect(s.remove('web', a.record.id)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringContaining(`parent of ${b.record.id}`) });
  const removed = await s.remove('web', 'latest');
  expect(removed.id).toBe(b.record.id);
  expect(existsSync(b.dir)).toBe(false);
  await s.remove('web', a.record.id);
  mkdirSync(join(dir, 'snapshots', 'web', '009-20261112T120000Z'));
  await s.remove('web', '9');
  expect(readdirSync(join(dir, 'snapshots', 'web')).filter((f) => f !== 'head.json')).toEqual([]);
  await expect(s.remove('web', '1')).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  await expect(s.list('../etc')).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
});

describe('the store root (#14: a planted link or a foreign directory is never written into)', () => {
  const storeAt = (root: string, adoptRoot = false) =>
    new SnapshotStore({ registry: createRuntimeRegistry({ runc: false, docker: false, adapters: [runtime] }), memTrack: async () => false, root, workRoot: join(dir, 'work'), adoptRoot });

  test('a store root that is a symlink is refused; the directory it points at is not chmod-ed or written', async () => {
    const victim = join(dir, 'victim');
    mkdirSync(victim, { mode: 0o755 });
    symlinkSync(victim, join(dir, 'planted'));
    await expect(storeAt(join(dir, 'planted')).take('web')).rejects.toMatchObject({ code: 'ERR_PRECHECK_UNSAFE_PATH' });
    expect(mode(victim)).toBe(0o755);
    expect(readdirSync(victim)).toEqual([]);
  });

  test('a non-empty directory that is not a store is refused unless adopted', async () => {
    const other = join(dir, 'other');
    mkdirSync(other, { mode: 0o755 });
    writeFileSync(join(other, 'notes.txt'), 'mine');
    await expect(storeAt(other).take('web')).rejects.toMatchObject({ code: 'ERR_PRECHECK_UNSAFE_PATH', hint: expect.stringContaining('--adopt-store') });
    expect(readdirSync(other)).toEqual(['notes.txt']);
    expect(mode(other)).toBe(0o755);
    await storeAt(other, true).take('web');
    expect(readdirSync(other).sort()).toEqual(['.ferry-snapshot-store', 'notes.txt', 'web']);
    await storeAt(other).take('web'); // marked: a store from now on
  });

  test('a store written before the marker existed is recognised', async () => {
    const root = join(dir, 'snapshots');
    await store().take('web');
    rmSync(join(root, '.ferry-snapshot-store'));
    await store().take('web');
    expect(existsSync(join(root, '.ferry-snapshot-store'))).toBe(true);
  });
});
