import { isFerryError } from '../model/ferry-error';
import type { TaskIds } from './proc-tree';
import { planSessionDump, sessionDumpOptions, sessionRestoreOptions } from './session-plan';

/** tty_nr of /dev/pts/N as /proc/PID/stat encodes it (major 136). */
const pts = (n: number) => (136 << 8) | (n & 0xff) | ((n & ~0xff) << 12);
const task = (pid: number, ppid: number, pgid: number, sid: number, ttyNr = 0): TaskIds => ({ pid, ppid, pgid, sid, ttyNr, state: 'S' });

describe('planSessionDump', () => {
  test('a tmux server: sessions and pty pairs inside the tree need nothing special', () => {
    const tasks = [task(100, 1, 100, 100), task(101, 100, 101, 101, pts(0)), task(102, 101, 102, 101, pts(0))];
    const plan = planSessionDump(100, tasks, { masters: [0], slaves: [0] }, 'tmux');
    expect(plan).toMatchObject({ kind: 'tmux', shellJob: false, terminal: 'none' });
  });

  test('a job of an interactive shell: shell_job, resumed on the restorer\'s terminal', () => {
    const tasks = [task(200, 150, 200, 150, pts(3)), task(201, 200, 200, 150, pts(3))];
    const plan = planSessionDump(200, tasks, { masters: [], slaves: [3] });
    expect(plan).toMatchObject({ kind: 'shell-job', shellJob: true, terminal: 'caller', externalPty: 3 });
    expect(plan.reason).toMatch(/session leader 150 is outside/);
  });

  test('a job in a foreign session without a terminal open: shell_job, no terminal', () => {
    const plan = planSessionDump(300, [task(300, 1, 300, 42)], { masters: [], slaves: [] });
    expect(plan).toMatchObject({ kind: 'shell-job', shellJob: true, terminal: 'none' });
    expect(plan.externalPty).toBeUndefined();
  });

  test('a whole shell session whose terminal master is outside: a new pty on restore', () => {
    const tasks = [task(400, 399, 400, 400, pts(7)), task(401, 400, 401, 400, pts(7))];
    const plan = planSessionDump(400, tasks, { masters: [], slaves: [7] });
    expect(plan).toMatchObject({ kind: 'shell-session', shellJob: true, terminal: 'new-pty', externalPty: 7 });
  });

  test('ptys above 255 decode like the kernel encodes them', () => {
    const plan = planSessionDump(400, [task(400, 1, 400, 400, pts(300))], { masters: [], slaves: [300] });
    expect(plan).toMatchObject({ terminal: 'new-pty', externalPty: 300 });
  });

  test('a slave open in an own session that is not its terminal can only be inherited', () => {
    const plan = planSessionDump(500, [task(500, 1, 500, 500)], { masters: [], slaves: [4] });
    expect(plan).toMatchObject({ kind: 'process-tree', shellJob: true, terminal: 'caller', externalPty: 4 });
  });

  test('two outside terminals are refused: CRIU restores one', () => {
    let caught: unknown;
    try {
      planSessionDump(600, [task(600, 1, 600, 600, pts(1))], { masters: [], slaves: [1, 2] });
    } catch (err) {
      caught = err;
    }
    expect(isFerryError(caught, 'ERR_PRECHECK_UNSUPPORTED_CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(/\/dev\/pts\/1, \/dev\/pts\/2/);
  });

  test('a root missing from the tree is bad input', () => {
    expect(() => planSessionDump(7, [], { masters: [], slaves: [] })).toThrow(/not part of the tree/);
  });
});

describe('CRIU options', () => {
  test('dump: shell_job from the plan, file locks on by default, TCP off', () => {
    const plan = planSessionDump(200, [task(200, 150, 200, 150, pts(3))], { masters: [], slaves: [3] });
    expect(sessionDumpOptions(plan, { pid: 200, imagesDir: '/i' })).toEqual({
      pid: 200,
      imagesDir: '/i',
      leaveRunning: false,
      shellJob: true,
      fileLocks: true,
      tcpEstablished: false,
    });
  });

  const recorded = { shellJob: true, tcpEstablished: false, fileLocks: true };

  test('restore of a shell session: orphan_pts_master, no stdin', () => {
    expect(sessionRestoreOptions({ ...recorded, terminal: 'new-pty' }, '/i', 0)).toEqual({
      options: { imagesDir: '/i', logFile: 'restore.log', fileLocks: true, tcpEstablished: false, orphanPtsMaster: true },
    });
  });

  test('restore of a shell job: shell_job and the restorer\'s terminal as CRIU\'s stdin', () => {
    expect(sessionRestoreOptions({ ...recorded, terminal: 'caller' }, '/i', 0)).toEqual({
      options: { imagesDir: '/i', logFile: 'restore.log', fileLocks: true, tcpEstablished: false, shellJob: true },
      stdin: 0,
    });
  });

  test('restore of a shell job without a terminal is refused with a hint', () => {
    let caught: unknown;
    try {
      sessionRestoreOptions({ ...recorded, terminal: 'caller' }, '/i');
    } catch (err) {
      caught = err;
    }
    expect(isFerryError(caught, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
    expect((caught as { hint: string }).hint).toMatch(/interactive terminal/);
  });

  test('restore of a self-contained tree: no terminal options', () => {
    expect(sessionRestoreOptions({ shellJob: false, tcpEstablished: true, fileLocks: false, terminal: 'none' }, '/i')).toEqual({
      options: { imagesDir: '/i', logFile: 'restore.log', fileLocks: false, tcpEstablished: true },
    });
  });
});
