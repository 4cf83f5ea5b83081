import { spawn } from 'node:child_process';
import { isAlive, killIfSame, parseProcStat, processId, processesMarked, selfId } from './proc-identity';

test('parses /proc/PID/stat with a command name that holds spaces and parentheses', () => {
  const line = '4242 (criu: dump (x)) t 4200 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10 18446744073709551615';
  expect(parseProcStat(line)).toEqual({ pid: 4242, ppid: 4200, state: 't', startTime: 987654 });
  expect(parseProcStat('garbage')).toBeUndefined();
});

test('names this process, and a recycled pid does not match', () => {
  const self = selfId();
  expect(self.pid).toBe(process.pid);
  expect(isAlive(self)).toBe(true);
  expect(isAlive({ ...self, startTime: self.startTime + 1 })).toBe(false);
  expect(killIfSame({ ...self, startTime: self.startTime + 1 })).toBe(false);
});

test('finds a marked process with its children and kills it by identity', async () => {
  const marker = `ferry-test-marker-${process.pid}-${Date.now()}`;
  const child = spawn('sh', ['-c', `sleep 30 & wait # ${marker}`], { stdio: 'ignore' });
  try {
    let found: ReturnType<typeof processesMarked> = [];
    for (let i = 0; i < 100 && found.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      found = processesMarked(marker);
    }
    expect(found.map((p) => p.pid)).toContain(child.pid);
    expect(found.length).toBe(2); // sh and its sleep
    const shell = processId(child.pid!)!;
    const exited = new Promise((r) => child.once('exit', r));
    expect(killIfSame(shell)).toBe(true);
    await exited;
    for (const p of found) killIfSame(p);
  } finally {
    child.kill('SIGKILL');
  }
});
