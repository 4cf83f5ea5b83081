/**
 * Against the real kernel: a process tree with a task of another user. The preflight refuses it exactly when the
 * kernel refuses this root a read of that task's rlimits (what CRIU does: prlimit64 with no new limit).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { assertRlimitsReadable, hasCapability, processTree } from './rlimit-access';

let parent: ChildProcess;
let childPid: number;

beforeAll(async () => {
  // A root shell (the container's init) with a child that dropped to nobody, as servers do.
  parent = spawn('sh', ['-c', 'setpriv --reuid=65534 --regid=65534 --clear-groups sleep 60 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  childPid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  for (let i = 0; i < 50 && !/^Uid:\s+65534/m.test(readFileSync(`/proc/${childPid}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
});

afterAll(() => {
  process.kill(childPid, 'SIGKILL');
  parent.kill('SIGKILL');
});

test('refused (ERR_PRECHECK_CAPABILITY_MISSING, naming the task) exactly when the kernel refuses the rlimit read', () => {
  expect(processTree(parent.pid!)).toEqual(expect.arrayContaining([parent.pid, childPid]));
  const kernelRefuses = spawnSync('prlimit', ['--pid', String(childPid), '--nofile'], { encoding: 'utf8' }).status !== 0;
  expect(kernelRefuses).toBe(!hasCapability(readFileSync('/proc/self/status', 'utf8')));
  const check = () => assertRlimitsReadable(parent.pid!, 'web', {});
  if (kernelRefuses) {
    expect(check).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_CAPABILITY_MISSING', message: expect.stringContaining(`process ${childPid} (sleep) runs as uid 65534`) }));
  } else {
    expect(check).not.toThrow();
  }
  // The lab's CRIU that reads /proc/PID/limits instead (e2e/apps/lab/criu-shim.js) says so.
  expect(() => assertRlimitsReadable(parent.pid!, 'web', { FERRY_CRIU_READS_PROC_LIMITS: '1' })).not.toThrow();
  // A tree of root's tasks only is fine either way.
  const rootOnly = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    expect(() => assertRlimitsReadable(rootOnly.pid!, 'root-only', {})).not.toThrow();
  } finally {
    rootOnly.kill('SIGKILL');
  }
});
