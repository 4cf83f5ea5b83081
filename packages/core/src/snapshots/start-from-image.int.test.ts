/**
 * Fast start on real runc and CRIU (root, provisioned host): one checkpoint image started three times under
 * different names, every copy running and checked. With the workload fixture, each copy's memory verifies; with the
 * slow-start fixture (a service that computes a table before it answers), each copy answers at once with the same
 * table as the booted original, each from a network namespace of its own. The image is never written. Every
 * container and namespace is removed afterwards, also on failure.
 */
import { runCleanups } from '../testing/cleanups';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuncAdapter } from '../runtime/runc-adapter';
import { startRuncContainer } from '../testing/runc-container';
import { queryService, startSlowStartContainer } from '../testing/slow-start';
import { isAlive, verifyWorkloadMemory } from '../testing/workload';
import { startCopiesFromImage } from './start-from-image';

jest.setTimeout(60_000);

let dir: string;
let adapter: RuncAdapter;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-start-int-'));
  adapter = new RuncAdapter({ stateDir: join(dir, 'adapter-state') });
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

/** Names, sizes and mtimes of every file in the image directory: equal before and after means not written. */
function fingerprint(images: string): string {
  return readdirSync(images, { recursive: true })
    .map(String)
    .sort()
    .map((f) => {
      const st = statSync(join(images, f));
      return `${f} ${st.size} ${st.mtimeMs}`;
    })
    .join('\n');
}

function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

test('workload: one image started three times under different names, all running, memory verified', async () => {
  const c = await startRuncContainer({ memMib: 32 });
  cleanups.push(() => c.stop());
  const images = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: images }); // the original stops
  const before = fingerprint(images);
  const prefix = `${c.name}-copy`;
  for (let i = 1; i <= 3; i++) cleanups.push(() => adapter.remove(`${prefix}-${i}`));

  const started = await startCopiesFromImage(adapter, { imagesDir: images, namePrefix: prefix, count: 3, workRoot: join(dir, 'work') });
  expect(started.map((s) => s.container.ref.id)).toEqual([`${prefix}-1`, `${prefix}-2`, `${prefix}-3`]);
  // The first copy takes the original's free namespace; the others would collide with it and get their own.
  expect(started.map((s) => s.netns.mode)).toEqual(['join', 'own', 'own']);
  expect(started[0]!.container.netns?.path).toBe(c.netnsPath);
  expect(new Set(started.map((s) => s.container.netns?.path)).size).toBe(3);
  for (const s of started) {
    expect(s.container.state).toBe('running');
    expect(isAlive(s.container.pid!)).toBe(true);
    expect(s.criu?.pagesRestored).toBeGreaterThan(0);
  }
  // The copies share the bind-mounted state directory, so their memory is checked one at a time.
  for (const s of started) expect(await verifyWorkloadMemory(s.container.pid!, c.stateFile)).toBe('ok');
  expect(fingerprint(images)).toBe(before);
  expect(readdirSync(join(dir, 'work'))).toEqual([]);

  for (const s of started) await adapter.remove(s.container.ref.id);
  const left = netnsNames();
  for (const s of started.slice(1)) expect(left).not.toContain(s.container.netns!.path!.split('/').pop());
});

test('slow-start service: three copies answer right away with the booted original\'s table', async () => {
  const original = await startSlowStartContainer({ tableMib: 32, initMs: 2000 });
  cleanups.push(() => original.stop());
  expect(original.bootMs).toBeGreaterThanOrEqual(2000);
  const sum = (await queryService(original.netnsPath, original.address, original.port, 'sum')).reply;
  expect(sum).toMatch(/^sum [0-9a-f]{16} ok$/);
  const entry = (await queryService(original.netnsPath, original.address, original.port, 'get 123456')).reply;

  const images = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: original.name }, { imagesDir: images, leaveRunning: true });
  const before = fingerprint(images);
  const prefix = `${original.name}-fast`;
  for (let i = 1; i <= 3; i++) cleanups.push(() => adapter.remove(`${prefix}-${i}`));
  const started = await startCopiesFromImage(adapter, { imagesDir: images, namePrefix: prefix, count: 3, workRoot: join(dir, 'work') });
  // The original still runs in the recorded namespace: every copy gets its own, with the same address.
  expect(started.map((s) => s.netns.mode)).toEqual(['own', 'own', 'own']);
  expect(started[0]!.netns.holders).toEqual([original.name]);
  for (const s of started) {
    const netns = s.container.netns!.path!;
    expect(netns).not.toBe(original.netnsPath);
    expect(s.restoreMs).toBeLessThan(original.bootMs);
    const probe = await queryService(netns, original.address, original.port, 'get 4242');
    expect(probe.verified).toBe(true);
    expect((await queryService(netns, original.address, original.port, 'sum')).reply).toBe(sum);
    expect((await queryService(netns, original.address, original.port, 'get 123456')).reply).toBe(entry);
  }
  // The original answers as before.
  expect((await queryService(original.netnsPath, original.address, original.port, 'sum')).reply).toBe(sum);
  expect(fingerprint(images)).toBe(before);
});
