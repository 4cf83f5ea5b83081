/**
 * An abort during a dump against real runc and CRIU (root, provisioned host): the dump tool is not killed while CRIU
 * may be inside the tasks (dump-abort.ts). It runs to its end, the checkpoint then reports ERR_ABORTED, and the
 * container runs on with its memory intact. A lazy dump aborted before it is ready is ended once ready.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLocalPort } from '../network/free-port';
import { runCleanups } from '../testing/cleanups';
import { rejection } from '../testing/rejection';
import { startRuncContainer } from '../testing/runc-container';
import { readWorkloadState, verifyWorkloadMemory, waitFor, waitForCounter } from '../testing/workload';
import { RuncAdapter } from './runc-adapter';

jest.setTimeout(120_000);

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-dump-abort-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

test('runc: an abort as CRIU starts a leave-running dump lets CRIU finish; then ERR_ABORTED, and the container runs on intact', async () => {
  const adapter = new RuncAdapter({ stateDir: join(dir, 'state') });
  const c = await startRuncContainer({ memMib: 128, dirtyPagesPerSec: 200 });
  cleanups.push(() => c.stop());
  await waitForCounter(c.stateFile, 2);
  const workDir = join(dir, 'work');
  const log = join(workDir, 'dump.log');
  const stop = new AbortController();
  const dump = adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir: join(dir, 'images'), workDir, leaveRunning: true, signal: stop.signal });
  // CRIU has started once its log exists: from there to the end of the dump it seizes and infects the tasks.
  await waitFor('CRIU to start its log', () => existsSync(log), 30_000, 2);
  stop.abort();

  expect((await rejection(dump)).code).toBe('ERR_ABORTED');
  expect(readFileSync(log, 'utf8')).toMatch(/Dumping finished successfully/);
  expect((await adapter.inspect(c.name)).state).toBe('running');
  const at = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, at + 3);
  expect(await verifyWorkloadMemory(await c.pid(), c.stateFile)).toBe('ok');
});

test('runc: a lazy dump aborted before it is ready becomes ready, then ends; the container runs on intact', async () => {
  const adapter = new RuncAdapter({ stateDir: join(dir, 'state') });
  const c = await startRuncContainer({ memMib: 64 });
  cleanups.push(() => c.stop());
  await waitForCounter(c.stateFile, 2);
  const workDir = join(dir, 'work');
  const stop = new AbortController();
  let ready = false;
  const dump = adapter.checkpoint(
    { runtime: 'runc', id: c.name },
    { imagesDir: join(dir, 'images'), workDir, lazyPages: { address: '127.0.0.1', port: await freeLocalPort(), onReady: () => (ready = true) }, signal: stop.signal },
  );
  await waitFor('CRIU to start its log', () => existsSync(join(workDir, 'dump.log')), 30_000, 2);
  stop.abort();

  expect((await rejection(dump)).code).toBe('ERR_ABORTED');
  expect(ready).toBe(true);
  expect((await adapter.inspect(c.name)).state).toBe('running');
  const at = readWorkloadState(c.stateFile)!.counter;
  await waitForCounter(c.stateFile, at + 3);
  expect(await verifyWorkloadMemory(await c.pid(), c.stateFile)).toBe('ok');
});

