/**
 * `--ps-socket` with the real CRIU (4.2.1), as docs/design/crash-safety.md section 4 assumes it works: a lazy-pages
 * daemon and a page server that listen nowhere, the daemon holding a copy of ferry's end that a successor takes
 * back, and a dump run inside a private network namespace whose page server only ferry reaches.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptSocket, connectSocket, socketInNetns, socketName, StreamSocket, type FdHandle } from '@ferry/native';
import { commandInNetns, stdioWithNetns } from '../host/netns-exec';
import { createImageDir } from '../image/image-dir';
import { killQuietly, removeTestDir, runCleanups, type Cleanup } from '../testing/cleanups';
import { LAZY_SOURCE_PORT, startLazySource, startNetnsWorkload } from '../testing/lazy-source';
import { isAlive, readWorkloadState, verifyWorkloadMemory, waitFor, waitForCounter } from '../testing/workload';
import { startLazyPagesDaemon } from './lazy-pages-daemon';
import { startPageServerProcess } from './page-server-process';
import { CRIU_HELD_FERRY_FD, createPageSocketPair, reclaimFerryEnd } from './page-socket';

jest.setTimeout(120_000);

let dir: string;
const cleanups: Cleanup[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-ps-socket-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  removeTestDir(dir);
});

const socketInode = (path: string) => readlinkSync(path);

/** Copies bytes both ways until either side ends (a dumb relay: CRIU speaks to CRIU through ferry). */
function pipeBoth(a: StreamSocket, b: StreamSocket): Promise<void> {
  const one = async (from: StreamSocket, to: StreamSocket) => {
    for (;;) {
      const chunk = await from.read(1 << 20).catch(() => null);
      if (!chunk) return;
      await to.write(chunk.data);
    }
  };
  return Promise.race([one(a, b), one(b, a)]).then(() => {
    a.close();
    b.close();
  });
}

async function restoreLazily(imagesDir: string, workDir: string): Promise<number> {
  const pidfile = join(workDir, 'restored.pid');
  await new Promise<void>((resolve, reject) => {
    const r = spawn('criu', ['restore', '-D', imagesDir, '-W', workDir, '--lazy-pages', '-d', '--manage-cgroups=ignore', '--pidfile', pidfile, '-o', 'restore.log', '-v4'], { stdio: 'ignore' });
    r.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`criu restore exited ${code}; log ${join(workDir, 'restore.log')}`))));
  });
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  cleanups.push(() => killQuietly(pid));
  return pid;
}

test('criu lazy-pages --ps-socket serves a lazy restore through ferry; it holds ferry\'s end, which reclaimFerryEnd takes back', async () => {
  const src = await startLazySource({ dir: join(dir, 'src'), memMib: 16 });
  cleanups.push(() => src.stop());
  await src.ready;

  const pair = await createPageSocketPair();
  cleanups.push(() => pair.ferryEnd.close());
  const workDir = join(dir, 'dst');
  mkdirSync(workDir, { mode: 0o700 });
  const daemon = await startLazyPagesDaemon({ criuPath: 'criu', imagesDir: src.imagesDir, workDir, pageServer: { socket: pair } });
  cleanups.push(() => daemon.kill());
  expect(pair.criuEnd.closed).toBe(true);

  // The daemon holds ferry's end as fd 4, and a successor can take it back: the same socket.
  const ours = socketInode(`/proc/self/fd/${pair.ferryEnd.fd}`);
  expect(socketInode(`/proc/${daemon.pid}/fd/${CRIU_HELD_FERRY_FD}`)).toBe(ours);
  const reclaimed = reclaimFerryEnd(daemon.pid);
  expect(socketInode(`/proc/self/fd/${reclaimed.fd}`)).toBe(ours);
  reclaimed.close();

  // ferry relays the daemon's requests to the lazy dump's page server, reached inside the dump's namespace only.
  const toSource = await socketInNetns(src.netns, { family: 'inet', type: 'stream' });
  await connectSocket(toSource, 'inet', '127.0.0.1', LAZY_SOURCE_PORT);
  const relay = pipeBoth(StreamSocket.adopt(pair.ferryEnd.dup()), StreamSocket.adopt(toSource));

  const atDump = readWorkloadState(src.stateFile)!.counter;
  const restored = await restoreLazily(src.imagesDir, workDir);
  expect((await daemon.exited).code).toBe(0);
  await relay;
  await waitForCounter(src.stateFile, atDump + 2);
  expect(await verifyWorkloadMemory(restored, src.stateFile)).toBe('ok');
  // The source page server saw a clean end once every page was served: CRIU ended the source.
  expect((await src.dumpExited).code).toBe(0);
  expect(isAlive(src.pid)).toBe(false);
});

test('criu page-server --ps-socket writes the pages a dump streams to it through ferry', async () => {
  const workload = await startNetnsWorkload({ dir, memMib: 16, dirtyPagesPerSec: 200 });
  cleanups.push(() => workload.stop());
  const imagesDir = createImageDir(join(dir, 'images'));
  const workDir = join(dir, 'work');
  mkdirSync(workDir, { mode: 0o700 });

  const pair = await createPageSocketPair();
  cleanups.push(() => pair.ferryEnd.close());
  const server = await startPageServerProcess({ criuPath: 'criu', imagesDir, workDir, socket: pair });
  cleanups.push(() => server.kill());

  // The dump's page-server connection ends in ferry's listener inside the dump's own namespace.
  const listener: FdHandle = await socketInNetns(workload.netns, { family: 'inet', type: 'stream', bind: { address: '127.0.0.1', port: 0 }, listen: 1 });
  cleanups.push(() => listener.close());
  const { port } = socketName(listener);
  const accepted = acceptSocket(listener, 60_000);
  const argv = commandInNetns('criu', ['dump', '-t', String(workload.pid), '-D', imagesDir, '-W', workDir, '--page-server', '--address', '127.0.0.1', '--port', String(port), '-o', 'dump.log', '-v4']);
  const dump = spawn(argv.file, argv.args, { stdio: stdioWithNetns(workload.netns.fd) });
  cleanups.push(() => killQuietly(dump.pid!));
  const dumped = new Promise<number | null>((resolve) => dump.once('exit', (code) => resolve(code)));
  const relay = pipeBoth(StreamSocket.adopt(await accepted), StreamSocket.adopt(pair.ferryEnd.dup()));
  expect(await dumped).toBe(0);
  expect((await server.exited).code).toBe(0);
  await relay;

  const atDump = readWorkloadState(workload.stateFile)!.counter;
  const pidfile = join(workDir, 'restored.pid');
  await new Promise<void>((resolve, reject) => {
    const r = spawn('criu', ['restore', '-D', imagesDir, '-W', workDir, '-d', '--manage-cgroups=ignore', '--pidfile', pidfile, '-o', 'restore.log', '-v4'], { stdio: 'ignore' });
    r.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`restore exited ${code}: ${readFileSync(join(workDir, 'restore.log'), 'utf8').split('\n').filter((l) => l.includes('Error')).join('\n')}`))));
  });
  const restored = Number(readFileSync(pidfile, 'utf8'));
  cleanups.push(() => killQuietly(restored));
  await waitFor('the restored counter', () => (readWorkloadState(workload.stateFile)?.counter ?? 0) > atDump);
  expect(await verifyWorkloadMemory(restored, workload.stateFile)).toBe('ok');
});
