/**
 * The post-copy page path with the real CRIU (root): a workload dumped lazily inside a private network namespace and
 * held frozen by ferry, restored lazily in a fresh PID namespace on this machine, its pages read by ferry from the
 * frozen source and served through the page link and the destination relay. Memory is verified by the workload.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, killQuietly, LAZY_SOURCE_PORT, removeTestDir, runCleanups, verifyWorkloadMemory, waitFor, type Cleanup } from '@ferry/core/testing';
import { PageRelay, type RelayEvent } from './relay';
import { finishLazyDump } from './source-hold';
import { serveSourcePages } from './source-pages';
import { LAZY_PAGES_SOCKET } from './uffd-proxy';
import { prepareLocalMove, restoreLazily } from './lazy-move.test-helpers';

jest.setTimeout(180_000);

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-relay-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

/** TCP sockets listening in this (the host's) network namespace, as "address:port" in hex from /proc/net/tcp{,6}. */
function hostListeners(): Set<string> {
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') out.add(f[1]!);
    }
  }
  return out;
}

/** What an unprivileged local process (uid 65534) gets when it tries every door it could find. */
function tryAsNobody(paths: string[], port: number): Record<string, string> {
  const script = `
    const net = require('net');
    const fs = require('fs');
    const out = {};
    const tries = ${JSON.stringify(paths)}.map((p) => new Promise((res) => {
      const s = net.connect(p);
      s.once('connect', () => { out[p] = 'CONNECTED'; s.destroy(); res(); });
      s.once('error', (e) => { out[p] = e.code; res(); });
    }));
    tries.push(new Promise((res) => {
      const s = net.connect(${port}, '127.0.0.1');
      s.once('connect', () => { out['tcp:${port}'] = 'CONNECTED'; s.destroy(); res(); });
      s.once('error', (e) => { out['tcp:${port}'] = e.code; res(); });
    }));
    Promise.all(tries).then(() => process.stdout.write(JSON.stringify(out)));`;
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`setpriv failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

test('(a)(e) pages come from the frozen source through the link and the relay; no other local user can reach any of it', async () => {
  const listenersBefore = hostListeners();
  const move = await prepareLocalMove(dir, 64);
  cleanups.push(() => move.src.stop());
  const events: RelayEvent[] = [];
  const relay = await PageRelay.start({ migrationId: 'm-a', dir: move.relayDir, imagesDir: move.imagesDir, restoreWorkDir: move.restoreWorkDir, onEvent: (e) => events.push(e) });
  cleanups.push(() => {
    relay.killDaemon();
    relay.release();
  });
  const ready = events.find((e) => e.type === 'relay-ready') as Extract<RelayEvent, { type: 'relay-ready' }>;
  expect(ready.remotePages).toBeGreaterThan(64 * 256 * 0.9);
  expect(ready.localPages).toBe(0);
  const served = serveSourcePages({ migrationId: 'm-a', memory: move.memory, dial: move.dial });
  const restored = await restoreLazily(move);
  cleanups.push(() => killQuietly(restored));

  // (e) Mid-move, as uid 65534: no listener anywhere for it (the dump's page server is in a private netns, the
  // relay's and the proxy's sockets in 0700 directories, the daemon's page socket is a connected pair).
  expect([...hostListeners()].filter((l) => !listenersBefore.has(l))).toEqual([]);
  const doors = [join(move.relayDir, 'link.sock'), join(move.restoreWorkDir, LAZY_PAGES_SOCKET), join(move.relayDir, 'daemon', LAZY_PAGES_SOCKET)];
  const nobody = tryAsNobody(doors, LAZY_SOURCE_PORT);
  expect(nobody).toEqual({ ...Object.fromEntries(doors.map((p) => [p, 'EACCES'])), [`tcp:${LAZY_SOURCE_PORT}`]: 'ECONNREFUSED' });

  const report = await relay.finished;
  expect(report.pagesAnswered).toBeGreaterThanOrEqual(ready.remotePages);
  expect(report.pull.pagesFetched).toBe(ready.remotePages);
  const link = await served;
  expect(link.bytesSent).toBeGreaterThanOrEqual(ready.remotePages * 4096);
  expect(events.map((e) => e.type)).toContain('restore-attached');
  expect(await verifyWorkloadMemory(restored, move.src.stateFile)).toBe('ok');

  // The source ends only now, through the dump's own page server, reached inside its namespace.
  expect(isAlive(move.src.pid)).toBe(true);
  await finishLazyDump({ netns: move.src.netns, port: LAZY_SOURCE_PORT, freezerPath: move.src.freezerPath });
  expect((await move.src.dumpExited).code).toBe(0);
  await waitFor('the source to be gone', () => !isAlive(move.src.pid));
  expect(isAlive(restored)).toBe(true);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('(b) a link cut in the middle of the transfer is resumed over a new connection', async () => {
  const move = await prepareLocalMove(dir, 64);
  cleanups.push(() => move.src.stop());
  const events: RelayEvent[] = [];
  const relay = await PageRelay.start({ migrationId: 'm-b', dir: move.relayDir, imagesDir: move.imagesDir, restoreWorkDir: move.restoreWorkDir, onEvent: (e) => events.push(e), pull: { batchPages: 64, inFlight: 2 } });
  cleanups.push(() => {
    relay.killDaemon();
    relay.release();
  });
  // The first connection breaks once 8 MiB of pages have gone through it; later ones do not.
  let dials = 0;
  const dial = async () => {
    const stream = await move.dial();
    if (++dials === 1) {
      let sent = 0;
      const write = stream.write.bind(stream);
      stream.write = ((chunk: Buffer, ...rest: never[]) => {
        sent += chunk.length;
        if (sent > 8 << 20) {
          stream.destroy();
          return false;
        }
        return write(chunk, ...rest);
      }) as typeof stream.write;
    }
    return stream;
  };
  const memory = { read: async (get: Parameters<typeof move.memory.read>[0]) => (await sleep(10), move.memory.read(get)) };
  const served = serveSourcePages({ migrationId: 'm-b', memory, dial, retryMs: 200 });
  const restored = await restoreLazily(move);
  cleanups.push(() => killQuietly(restored));
  await relay.finished;
  await served;
  expect(dials).toBeGreaterThanOrEqual(2);
  const down = events.findIndex((e) => e.type === 'link-down');
  expect(down).toBeGreaterThan(0);
  expect(events.slice(down).some((e) => e.type === 'link-up' && e.resent > 0)).toBe(true);
  expect(await verifyWorkloadMemory(restored, move.src.stateFile)).toBe('ok');
  await finishLazyDump({ netns: move.src.netns, port: LAZY_SOURCE_PORT, freezerPath: move.src.freezerPath });
});

/** The kernel function a task blocked on a missing userfaultfd page sleeps in. */
const waitsOnUffd = (pid: number) => readFileSync(`/proc/${pid}/wchan`, 'utf8').includes('userfault');

test('(d) the lazy-pages daemon killed -9: faulting tasks wait on the copies ferry holds, never run on zeros (control: without the copies they do)', async () => {
  for (const holdCopies of [true, false]) {
    const sub = join(dir, holdCopies ? 'held' : 'control');
    const move = await prepareLocalMove(sub, 32);
    const events: RelayEvent[] = [];
    const relay = await PageRelay.start({ migrationId: 'm-d', dir: move.relayDir, imagesDir: move.imagesDir, restoreWorkDir: move.restoreWorkDir, onEvent: (e) => events.push(e), pull: { batchPages: 16, inFlight: 1 } });
    // A slow source: most pages are still missing when the daemon dies.
    const memory = { read: async (get: Parameters<typeof move.memory.read>[0]) => (await sleep(100), move.memory.read(get)) };
    const abort = new AbortController();
    const served = serveSourcePages({ migrationId: 'm-d', memory, dial: move.dial, signal: abort.signal });
    served.catch(() => undefined);
    const restored = await restoreLazily(move);
    try {
      await waitFor('the restore to hand over its userfaultfds', () => events.some((e) => e.type === 'restore-attached'));
      const ready = events.find((e) => e.type === 'relay-ready') as Extract<RelayEvent, { type: 'relay-ready' }>;
      process.kill(ready.daemonPid, 'SIGKILL');
      await expect(relay.finished).rejects.toMatchObject({ code: 'ERR_POSTCOPY_DAEMON_LOST' });
      const lost = events.find((e) => e.type === 'daemon-lost') as Extract<RelayEvent, { type: 'daemon-lost' }>;
      expect(lost.uffdsHeld).toBeGreaterThanOrEqual(1);
      if (!holdCopies) relay.release(); // the control: nobody holds the userfaultfds any more
      // The workload reads every page of its memory to verify it.
      const verdict = verifyWorkloadMemory(restored, move.src.stateFile, 3_000).catch(() => 'no verdict');
      if (holdCopies) {
        await waitFor('the workload to block on a missing page', () => waitsOnUffd(restored), 10_000);
        expect(await verdict).toBe('no verdict');
        expect(waitsOnUffd(restored)).toBe(true);
        // The owner kills the copy: a task waiting on a userfaultfd dies on SIGKILL.
        killQuietly(restored);
        await waitFor('the restored copy to die', () => !isAlive(restored));
        relay.release();
      } else {
        // Without the copies, the missing pages read as zeros: the workload either reports its memory CORRUPT or
        // crashes on a zeroed stack or data page (SIGSEGV seen here). It never waits.
        const outcome = await verdict;
        const ranOnZeros = /^CORRUPT/.test(outcome) || !isAlive(restored);
        expect({ outcome, ranOnZeros }).toMatchObject({ ranOnZeros: true });
        killQuietly(restored);
      }
    } finally {
      killQuietly(restored);
      abort.abort();
      relay.release();
      await move.src.stop();
    }
  }
});
