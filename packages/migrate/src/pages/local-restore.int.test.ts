/**
 * (f) #15's frozen restore that does not grow with memory: after hash-pre-copy the destination holds every page in
 * its level chain, so the restore can be lazy and served from those local pages by the relay, instead of CRIU reading
 * them all from the chain while the container is frozen. Both restores of the same images are timed side by side
 * (printed, not asserted: the machine is shared) and both copies' memory is verified. Real CRIU, root.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { lazyToParent } from '@ferry/core';
import { exerciseWorkload, killQuietly, lazyDump, removeTestDir, runCleanups, startNetnsWorkload, verifyWorkloadMemory, type Cleanup } from '@ferry/core/testing';
import { SentPages, sendRound } from '../precopy/memory-rounds';
import { PageLevels } from '../precopy/page-levels';
import { PageRecordDecoder, type PageRecord } from '../precopy/page-records';
import { PageRelay, type RelayEvent } from './relay';
import { holdFrozen } from './source-hold';

jest.setTimeout(600_000);

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-local-restore-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

/** One hash-pre-copy round of the task tree at `pid` into `levels`, as the destination agent writes it. */
async function roundInto(levels: PageLevels, pid: number, sent: SentPages): Promise<void> {
  levels.beginRound();
  const sink = new PassThrough({ highWaterMark: 1 << 20 });
  const decoder = new PageRecordDecoder();
  const consumed = (async () => {
    for await (const chunk of sink as AsyncIterable<Buffer>) {
      const records: PageRecord[] = [];
      decoder.push(chunk, (r) => records.push(r));
      for (const r of records) await levels.add(r);
    }
    decoder.end();
  })();
  await sendRound(pid, sent, sink);
  sink.end();
  await consumed;
  await levels.endRound();
}

function restore(imagesDir: string, workDir: string, lazy: boolean): Promise<{ pid: number; ms: number }> {
  const pidfile = join(workDir, 'restored.pid');
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const args = ['restore', '-D', imagesDir, '-W', workDir, ...(lazy ? ['--lazy-pages'] : []), '-d', '--manage-cgroups=ignore', '--pidfile', pidfile, '-o', 'restore.log', '-v4'];
    const r = spawn('criu', args, { stdio: 'ignore' });
    r.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) return reject(new Error(`criu restore exited ${code}; log ${join(workDir, 'restore.log')}`));
      resolve({ pid: Number(readFileSync(pidfile, 'utf8').trim()), ms });
    });
  });
}

const results: string[] = [];
afterAll(() => console.log(`(f) restore of the same images, eager from the chain vs lazy from the relay:\n${results.join('\n')}`));

test.each([
  [256, 'ferry'],
  [256, 'criu'],
  [1024, 'ferry'],
] as const)('(f) %i MiB: a lazy restore served from a pre-copy chain holding every page (handler: %s), against the eager restore', async (memMib, handler) => {
  const workload = await startNetnsWorkload({ dir: join(dir, 'src'), memMib });
  cleanups.push(() => workload.stop());
  const levelsDir = join(dir, 'dst', 'levels');
  mkdirSync(levelsDir, { recursive: true, mode: 0o700 });
  const levels = new PageLevels(levelsDir);
  const sent = new SentPages();
  await roundInto(levels, workload.pid, sent);

  const src = await lazyDump(workload, { dir: join(dir, 'src') });
  cleanups.push(() => src.stop());
  await src.ready;
  await holdFrozen(src.freezerPath);
  await roundInto(levels, workload.pid, sent); // the final round, from the frozen tasks
  await levels.close();
  const top = join(levelsDir, String(levels.levels));

  // Eager: the current hash-pre-copy restore, every lazy page marked "in parent" and read by CRIU from the chain.
  const eagerImages = join(dir, 'dst', 'eager');
  cpSync(src.imagesDir, eagerImages, { recursive: true });
  await lazyToParent(eagerImages);
  symlinkSync(relative(eagerImages, top), join(eagerImages, 'parent'));
  const eagerWork = join(dir, 'dst', 'eager-work');
  mkdirSync(eagerWork, { mode: 0o700 });
  const eager = await restore(eagerImages, eagerWork, false);
  cleanups.push(() => killQuietly(eager.pid));
  expect(await verifyWorkloadMemory(eager.pid, src.stateFile)).toBe('ok');
  killQuietly(eager.pid);

  // Lazy: the same images as dumped, the relay answering the daemon from the chain.
  const lazyImages = join(dir, 'dst', 'lazy');
  cpSync(src.imagesDir, lazyImages, { recursive: true });
  const restoreWork = join(dir, 'dst', 'lazy-work');
  mkdirSync(restoreWork, { mode: 0o700 });
  const events: RelayEvent[] = [];
  process.env.FERRY_LAZY_PAGES = handler;
  const relay = await PageRelay.start({ migrationId: 'm-f', dir: join(dir, 'dst', 'relay'), imagesDir: lazyImages, restoreWorkDir: restoreWork, localChain: top, localOnly: true, onEvent: (e) => events.push(e) });
  delete process.env.FERRY_LAZY_PAGES;
  cleanups.push(() => {
    relay.killDaemon();
    relay.release();
  });
  const ready = events.find((e) => e.type === 'relay-ready') as Extract<RelayEvent, { type: 'relay-ready' }>;
  expect(ready.remotePages).toBe(0);
  expect(ready.localPages).toBeGreaterThan(memMib * 256 * 0.99);
  const started = Date.now();
  const lazy = await restore(lazyImages, restoreWork, true);
  cleanups.push(() => killQuietly(lazy.pid));
  const report = await relay.finished;
  const allPagesMs = Date.now() - started;
  expect(report.pagesAnswered).toBeGreaterThanOrEqual(handler === 'ferry' ? ready.localPages * 0.99 : ready.localPages);
  expect(report.handler !== undefined).toBe(handler === 'ferry');
  expect(await verifyWorkloadMemory(lazy.pid, src.stateFile)).toBe('ok');
  const how = report.handler ? `ferry's handler: ${report.handler.pagesCopied} pages, ${report.handler.faults} faults, ${report.handler.zeroPages} zero pages` : `CRIU's daemon: ${report.daemonRequests} requests`;
  results.push(`  ${memMib} MiB: eager restore ${eager.ms.toFixed(0)} ms; lazy restore ${lazy.ms.toFixed(0)} ms (every page in the tasks after ${allPagesMs} ms; ${how})`);
});

test('(f) ferry\'s handler under fork, MADV_DONTNEED and mremap right after the restore: zeros stay zeros, moved pages keep their content, a child sees every page', async () => {
  const workload = await startNetnsWorkload({ dir: join(dir, 'src'), memMib: 512, exerciseMib: 64 });
  cleanups.push(() => workload.stop());
  const levelsDir = join(dir, 'dst', 'levels');
  mkdirSync(levelsDir, { recursive: true, mode: 0o700 });
  const levels = new PageLevels(levelsDir);
  const sent = new SentPages();
  const src = await lazyDump(workload, { dir: join(dir, 'src') });
  cleanups.push(() => src.stop());
  await src.ready;
  await holdFrozen(src.freezerPath);
  await roundInto(levels, workload.pid, sent);
  await levels.close();
  const images = join(dir, 'dst', 'lazy');
  cpSync(src.imagesDir, images, { recursive: true });
  const restoreWork = join(dir, 'dst', 'lazy-work');
  mkdirSync(restoreWork, { mode: 0o700 });
  const relay = await PageRelay.start({ migrationId: 'm-x', dir: join(dir, 'dst', 'relay'), imagesDir: images, restoreWorkDir: restoreWork, localChain: join(levelsDir, String(levels.levels)), localOnly: true });
  cleanups.push(() => {
    relay.killDaemon();
    relay.release();
  });
  const restored = await restore(images, restoreWork, true);
  cleanups.push(() => killQuietly(restored.pid));
  // At once: the exercise region is the highest mapping, the last the background fill reaches.
  const verdict = await exerciseWorkload(restored.pid, src.stateFile);
  const report = await relay.finished;
  expect(verdict).toBe('ok');
  expect(report.handler?.forks).toBeGreaterThanOrEqual(1);
  expect(report.handler?.removed).toBeGreaterThan(0);
  expect(await verifyWorkloadMemory(restored.pid, src.stateFile)).toBe('ok');
  results.push(`  exercise (512 MiB + 64 MiB): ${JSON.stringify(report.handler)}`);
});
