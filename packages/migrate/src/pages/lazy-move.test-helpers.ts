/**
 * A post-copy move on one machine for the page-path integration tests: the source (the workload fixture lazily
 * dumped in a private network namespace, core's startLazySource) held frozen by ferry, a destination directory with
 * a copy of the images, and a lazy restore in a fresh PID namespace. The tests put the relay and the link between.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { startLazySource, type LazySource } from '@ferry/core/testing';
import { holdFrozen } from './source-hold';
import { FrozenSourceMemory } from './source-memory';
import { LINK_SOCKET } from './relay';

export interface LocalMove {
  src: LazySource;
  memory: FrozenSourceMemory;
  /** The destination's copy of the images. */
  imagesDir: string;
  /** `criu restore -W` (0700). */
  restoreWorkDir: string;
  /** The relay's directory. */
  relayDir: string;
  /** Opens a connection to the relay's link socket (the tests' stand-in for SSH). */
  dial: () => Promise<Duplex>;
}

export async function prepareLocalMove(dir: string, memMib: number): Promise<LocalMove> {
  const src = await startLazySource({ dir: join(dir, 'src'), memMib });
  try {
    await src.ready;
    await holdFrozen(src.freezerPath);
    const memory = await FrozenSourceMemory.open({ initPid: src.pid, freezerPath: src.freezerPath });
    const dst = join(dir, 'dst');
    mkdirSync(dst, { mode: 0o700 });
    const imagesDir = join(dst, 'images');
    cpSync(src.imagesDir, imagesDir, { recursive: true });
    const restoreWorkDir = join(dst, 'restore');
    mkdirSync(restoreWorkDir, { mode: 0o700 });
    const relayDir = join(dst, 'relay');
    const dial = () =>
      new Promise<Duplex>((resolve, reject) => {
        const s = connect(join(relayDir, LINK_SOCKET));
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    return { src, memory, imagesDir, restoreWorkDir, relayDir, dial };
  } catch (error) {
    await src.stop();
    throw error;
  }
}

/** `criu restore --lazy-pages` (detached) from the destination's images; resolves with the restored init's host pid. */
export async function restoreLazily(move: Pick<LocalMove, 'imagesDir' | 'restoreWorkDir'>, extra: string[] = []): Promise<number> {
  const pidfile = join(move.restoreWorkDir, 'restored.pid');
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const r = spawn('criu', ['restore', '-D', move.imagesDir, '-W', move.restoreWorkDir, '--lazy-pages', '-d', '--manage-cgroups=ignore', '--pidfile', pidfile, '-o', 'restore.log', '-v4', ...extra], { stdio: 'ignore' });
    r.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`criu restore exited ${code} after ${Date.now() - started} ms; log ${join(move.restoreWorkDir, 'restore.log')}`))));
  });
  return Number(readFileSync(pidfile, 'utf8').trim());
}
