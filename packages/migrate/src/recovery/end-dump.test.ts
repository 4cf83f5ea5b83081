/**
 * endDump against real processes standing in for a dump's runc and CRIU: a dump whose owner died is left to end by
 * itself (CRIU killed inside the tasks can kill one), a ready lazy dump is killed at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { endDump } from './end-dump';
import { processId } from '../journal/proc-identity';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  started.length = 0;
});

/**
 * One process (no shell: a shell would see its child killed first and exit on its own) whose command line carries
 * `marker`, as a dump's argv carries its images dir, and which ends after `ms`.
 */
function standIn(marker: string, ms: number): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, ['-e', `setTimeout(() => process.exit(0), ${ms})`, marker], { stdio: 'ignore' });
  started.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

test('a dump still running when its owner died ends by itself before anything is killed', async () => {
  const marker = `/tmp/ferry-end-dump-${randomUUID()}`;
  const dump = standIn(marker, 700);
  await new Promise((r) => setTimeout(r, 100));
  const before = Date.now();
  await endDump({ t: 'hold', kind: 'dump', marker }, {});
  expect(await dump.exited).toEqual({ code: 0, signal: null });
  expect(Date.now() - before).toBeGreaterThanOrEqual(400);
});

test('a lazy dump that reported ready (its pids journaled) is killed at once', async () => {
  const marker = `/tmp/ferry-end-dump-${randomUUID()}`;
  const dump = standIn(marker, 60_000);
  await new Promise((r) => setTimeout(r, 100));
  const before = Date.now();
  await endDump({ t: 'hold', kind: 'dump', marker, port: 1234, pids: [processId(dump.child.pid!)!] }, {});
  expect(await dump.exited).toEqual({ code: null, signal: 'SIGKILL' });
  expect(Date.now() - before).toBeLessThan(5_000);
});
