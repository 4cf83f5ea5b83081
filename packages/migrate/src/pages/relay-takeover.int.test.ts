/**
 * (c) The destination relay runs as its own process (the hidden `ferry page-relay`); it is killed -9 in the middle of
 * a post-copy transfer and a successor takes over: it reclaims the daemon's page socket, resumes the daemon's stream
 * exactly where the dead relay left it (TCP counters + state file), and the source re-dials. Real CRIU, root.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isAlive, killQuietly, LAZY_SOURCE_PORT, removeTestDir, runCleanups, verifyWorkloadMemory, waitFor, type Cleanup } from '@ferry/core/testing';
import { spawnPageRelay, type RelayProcessConfig } from './relay-process';
import { finishLazyDump } from './source-hold';
import { serveSourcePages } from './source-pages';
import { prepareLocalMove, restoreLazily } from './lazy-move.test-helpers';

jest.setTimeout(240_000);

const FERRY = [process.execPath, resolve(__dirname, '..', '..', '..', 'cli', 'bin', 'ferry.js')];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-takeover-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

test('(c) the relay process killed -9 mid-transfer; a successor takes over and the restore completes intact', async () => {
  const move = await prepareLocalMove(dir, 64);
  cleanups.push(() => move.src.stop());
  const config: RelayProcessConfig = {
    migrationId: 'm-c',
    dir: move.relayDir,
    imagesDir: move.imagesDir,
    restoreWorkDir: move.restoreWorkDir,
    pull: { batchPages: 32, inFlight: 2 },
  };
  const first = spawnPageRelay(config, FERRY);
  cleanups.push(() => killQuietly(first.pid));
  const ready = await first.ready;
  cleanups.push(() => killQuietly(ready.daemonPid));
  // A slow source (about 5 MiB/s here), so that the kill lands while pages are still missing.
  const memory = { read: async (get: Parameters<typeof move.memory.read>[0]) => (await sleep(25), move.memory.read(get)) };
  const abort = new AbortController();
  const served = serveSourcePages({ migrationId: 'm-c', memory, dial: move.dial, retryMs: 100, signal: abort.signal });
  served.catch(() => undefined);
  cleanups.push(() => abort.abort());
  const restored = await restoreLazily(move);
  cleanups.push(() => killQuietly(restored));

  await waitFor('the pull to be under way', () => first.events().some((e) => e.type === 'pull-progress' && (e.pagesFetched as number) > 2000), 60_000);
  process.kill(first.pid, 'SIGKILL');
  await waitFor('the relay to be gone', () => !isAlive(first.pid));
  expect(isAlive(ready.daemonPid)).toBe(true); // its own session: the relay's death does not touch it

  const second = spawnPageRelay({ ...config, takeover: true }, FERRY);
  cleanups.push(() => killQuietly(second.pid));
  const again = await second.ready;
  expect(again).toMatchObject({ takeover: true, daemonPid: ready.daemonPid });
  const outcome = await second.outcome();
  if (!outcome.ok) throw new Error(`the successor failed: ${outcome.code} ${outcome.message}\n${JSON.stringify(second.events())}`);
  await served;
  expect(await verifyWorkloadMemory(restored, move.src.stateFile)).toBe('ok');
  await finishLazyDump({ netns: move.src.netns, port: LAZY_SOURCE_PORT, freezerPath: move.src.freezerPath });
  expect(isAlive(restored)).toBe(true);
});
