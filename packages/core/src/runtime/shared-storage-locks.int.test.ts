/** Against the real kernel's /proc/locks: a process tree holding a lock on the root's filesystem, or elsewhere. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerInfo } from '../model/container';
import { assertNoSharedStorageLocks } from './shared-storage-locks';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `flock FILE sleep 60`, once /proc/locks shows its lock. */
async function holder(file: string): Promise<number> {
  const c = spawn('flock', [file, 'sleep', '60'], { stdio: 'ignore' });
  children.push(c);
  for (let i = 0; i < 100 && !readFileSync('/proc/locks', 'utf8').includes(` ${c.pid} `); i++) await new Promise((r) => setTimeout(r, 20));
  return c.pid!;
}

const info = (pid: number, rootfs: string): ContainerInfo => ({ ref: { runtime: 'runc', id: 'queue' }, state: 'running', pid, rootfs }) as ContainerInfo;

test('a lock on the root\'s filesystem is refused, naming the process, the kind and the file; a lock elsewhere is not', async () => {
  const rootfs = mkdtempSync(join(tmpdir(), 'ferry-locks-'));
  dirs.push(rootfs);
  const pid = await holder(join(rootfs, 'lock'));
  expect(() => assertNoSharedStorageLocks(info(pid, rootfs))).toThrow(
    expect.objectContaining({ code: 'ERR_PRECHECK_UNSUPPORTED_CONFIG', message: expect.stringContaining(`process ${pid} holds a FLOCK lock on ${join(rootfs, 'lock')}`) }),
  );
  // The same tree, its lock on another filesystem (/dev/shm, a tmpfs): nothing the destination would wait for.
  const shm = mkdtempSync('/dev/shm/ferry-locks-');
  dirs.push(shm);
  const other = await holder(join(shm, 'lock'));
  expect(() => assertNoSharedStorageLocks(info(other, rootfs))).not.toThrow();
});
