/** tasksHeld against real processes: stopped (as a living CRIU leaves them) is held, running is not. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isCriuProcess, tasksHeld } from './tasks-running';

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

const stateOf = async (pid: number, letter: string) => {
  for (let i = 0; i < 200; i++) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith(letter)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} never reached state ${letter}`);
};

test('a stopped task is held; once it runs again it is not, and the verdict names it', async () => {
  child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = child.pid!;
  child.kill('SIGSTOP');
  await stateOf(pid, 'T');
  expect(tasksHeld([pid])).toEqual({ held: true });
  child.kill('SIGCONT');
  await stateOf(pid, 'S');
  expect(tasksHeld([pid])).toEqual({ held: false, detail: `tasks free to run: ${pid}:S` });
});

test('a task that is gone holds nothing back', () => {
  expect(tasksHeld([2 ** 22 + 12345])).toEqual({ held: true });
});

test('CRIU is recognised by its executable and command line, not by a tracer that names it', () => {
  const loader = 'ld-linux-x86-64.so.2';
  const lib = ['--library-path', '/opt/ferry/criu/usr/lib/x86_64-linux-gnu'];
  expect(isCriuProcess('criu', ['criu', 'dump', '-t', '1'])).toBe(true);
  expect(isCriuProcess('criu', ['criu: dump --rpc -t 168', ''])).toBe(true);
  expect(isCriuProcess(loader, ['/opt/ferry/criu/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', ...lib, '/opt/ferry/criu/usr/sbin/criu', 'swrk', '3'])).toBe(true);
  expect(isCriuProcess(loader, ['/opt/ferry/criu/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', ...lib, 'criu: dump --rpc -t 167 ', ''])).toBe(true);
  expect(isCriuProcess('gdb', ['gdb', '/usr/sbin/criu', '42'])).toBe(false);
  expect(isCriuProcess('strace', ['strace', '-f', '-o', '/tmp/criu', '-p', '42'])).toBe(false);
  expect(isCriuProcess('sleep', ['criu', '60'])).toBe(false); // exec -a criu
  expect(isCriuProcess(loader, ['/lib64/ld-linux-x86-64.so.2', '/usr/bin/strace', '-o', '/tmp/criu'])).toBe(false);
  expect(isCriuProcess(loader, ['/lib64/ld-linux-x86-64.so.2', ...lib, '/usr/bin/gdb', '/usr/sbin/criu'])).toBe(false);
});
