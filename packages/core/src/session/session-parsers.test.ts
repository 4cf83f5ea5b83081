import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../model/ferry-error';
import { parseProcNetUnix, parseProcStat, ptyIndexOfTtyNr } from './proc-tree';
import { parseScreenList, pickScreenSession } from './screen';
import { parseSessionTarget } from './session-checkpoint';
import { readSessionManifest, SESSION_MANIFEST_FILE, validateSessionManifest, writeSessionManifest, type SessionManifest } from './session-manifest';
import { parseClients, parseServerInfo, TmuxServer, type TmuxRun } from './tmux';

describe('/proc parsing', () => {
  test('stat: comm may hold spaces and parentheses', () => {
    expect(parseProcStat('18061 (tmux: server) S 1 18061 18061 0 -1 4194560 ...')).toEqual({
      pid: 18061,
      ppid: 1,
      pgid: 18061,
      sid: 18061,
      ttyNr: 0,
      state: 'S',
    });
    expect(parseProcStat('5 (a) b) (c) S 4 5 3 34817 5')).toMatchObject({ pid: 5, ppid: 4, pgid: 5, sid: 3, ttyNr: 34817 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  test('tty_nr: pty slaves only', () => {
    expect(ptyIndexOfTtyNr(34816)).toBe(0); // 136:0
    expect(ptyIndexOfTtyNr(34817)).toBe(1);
    expect(ptyIndexOfTtyNr((136 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12))).toBe(300);
    expect(ptyIndexOfTtyNr((137 << 8) | 2)).toBe(258); // the second pty major
    expect(ptyIndexOfTtyNr(0)).toBeUndefined();
    expect(ptyIndexOfTtyNr((4 << 8) | 1)).toBeUndefined(); // tty1
  });

  test('/proc/net/unix: listening flag, type, paths (abstract and unbound ones have none)', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000073edcecf: 00000002 00000000 00010000 0001 01 939239 /run/screen/S-root/8386.scr1',
      '0000000091217d38: 00000003 00000000 00000000 0001 03  1062',
      '00000000aaaaaaaa: 00000002 00000000 00000000 0002 01 777 @abstract',
      '00000000bbbbbbbb: 00000002 00000000 00010000 0005 01 778 /tmp/dir with space/s',
    ].join('\n');
    expect(parseProcNetUnix(text)).toEqual([
      { inode: 939239, listening: true, type: 1, path: '/run/screen/S-root/8386.scr1' },
      { inode: 1062, listening: false, type: 1 },
      { inode: 777, listening: false, type: 2 },
      { inode: 778, listening: true, type: 5, path: '/tmp/dir with space/s' },
    ]);
  });
});

describe('targets', () => {
  test.each([
    ['4242', { kind: 'pid', pid: 4242 }],
    ['tmux:work', { kind: 'tmux', session: 'work', socket: { name: 'x' } }],
    ['tmux', { kind: 'tmux', socket: { name: 'x' } }],
    ['tmux:', { kind: 'tmux', socket: { name: 'x' } }],
    ['screen:8386.work', { kind: 'screen', id: '8386.work' }],
  ])('%s', (text, expected) => {
    expect(parseSessionTarget(text, { name: 'x' })).toEqual(expected);
  });

  test.each(['1', 'ssh:x', 'screen:', '', '-3'])('%j is refused as bad input', (text) => {
    let caught: unknown;
    try {
      parseSessionTarget(text);
    } catch (err) {
      caught = err;
    }
    expect(isFerryError(caught, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
  });
});

describe('tmux', () => {
  test('list-sessions and list-clients output', () => {
    expect(parseServerInfo('main\t18061\t/tmp/tmux-0/fx1\t1\nother\t18061\t/tmp/tmux-0/fx1\t0\n')).toEqual({
      pid: 18061,
      socketPath: '/tmp/tmux-0/fx1',
      sessions: [
        { name: 'main', attachedClients: 1 },
        { name: 'other', attachedClients: 0 },
      ],
    });
    expect(() => parseServerInfo('')).toThrow(/unexpected/);
    expect(() => parseServerInfo('a\tb\n')).toThrow(/unexpected/);
    expect(parseClients('/dev/pts/1\t21074\tmain\n')).toEqual([{ name: '/dev/pts/1', pid: 21074, session: 'main' }]);
    expect(parseClients('')).toEqual([]);
  });

  test('names the server with -L or -S and reports a missing one as ERR_RUNTIME_NOT_FOUND', async () => {
    const calls: string[][] = [];
    const run: TmuxRun = async (argv) => {
      calls.push([...argv]);
      return { code: 1, stdout: '', stderr: 'error connecting to /tmp/tmux-0/nope (No such file or directory)\n' };
    };
    const server = new TmuxServer({ name: 'nope' }, { run });
    await expect(server.info()).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND', message: expect.stringContaining('error connecting') });
    expect(calls[0]?.slice(0, 3)).toEqual(['-L', 'nope', 'list-sessions']);
    expect(new TmuxServer({ path: '/s' }, { run }).argv(['ls'])).toEqual(['-S', '/s', 'ls']);
    expect(() => new TmuxServer({ name: 'a', path: '/b' })).toThrow(/not both/);
  });
});

describe('screen', () => {
  const ls = 'There are screens on:\n\t8386.work\t(11/27/26 13:28:16)\t(Attached)\n\t9001.work\t(11/27/26 13:29:00)\t(Detached)\n\t9002.misc\t(Detached)\n2 Sockets in /run/screen/S-root.\n';

  test('screen -ls output', () => {
    expect(parseScreenList(ls)).toEqual({
      sessions: [
        { pid: 8386, name: 'work', attached: true },
        { pid: 9001, name: 'work', attached: false },
        { pid: 9002, name: 'misc', attached: false },
      ],
      socketDir: '/run/screen/S-root',
    });
    expect(parseScreenList('No Sockets found in /run/screen/S-root.\n')).toEqual({ sessions: [], socketDir: '/run/screen/S-root' });
  });

  test('picks one session by NAME or PID.NAME', () => {
    const list = parseScreenList(ls);
    expect(pickScreenSession(list, 'misc').pid).toBe(9002);
    expect(pickScreenSession(list, '9001.work').pid).toBe(9001);
    expect(() => pickScreenSession(list, 'work')).toThrow(/2 screen sessions/);
    expect(() => pickScreenSession(list, 'none')).toThrow(/no screen session/);
  });
});

describe('ferry-session.json', () => {
  const manifest: SessionManifest = {
    version: 1,
    kind: 'tmux',
    rootPid: 100,
    pids: [100, 101],
    ownPidNamespace: false,
    shellJob: false,
    terminal: 'none',
    ptys: [0],
    tcpEstablished: false,
    fileLocks: true,
    leaveRunning: false,
    tmux: { path: '/tmp/tmux-0/w', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 }, sessions: ['w'] },
    listeningSockets: [{ path: '/tmp/tmux-0/w', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 } }],
    hostname: 'h1',
    createdAt: '2026-11-27T00:00:00.000Z',
    reason: 'r',
  };

  test('round trip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-session-manifest-'));
    try {
      writeSessionManifest(dir, manifest);
      expect(readSessionManifest(dir)).toEqual(manifest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a directory without one is ERR_IMAGE_NOT_FOUND; a broken one ERR_IMAGE_CORRUPT naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-session-manifest-'));
    try {
      expect(() => readSessionManifest(dir)).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_NOT_FOUND' }));
      writeFileSync(join(dir, SESSION_MANIFEST_FILE), '{nope');
      expect(() => readSessionManifest(dir)).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_CORRUPT' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => validateSessionManifest({ ...manifest, version: 2 })).toThrow(/version 2/);
    expect(() => validateSessionManifest({ ...manifest, terminal: 'tty' })).toThrow(/unknown terminal/);
    expect(() => validateSessionManifest({ ...manifest, pids: [0] })).toThrow(/pids/);
    expect(() => validateSessionManifest({ ...manifest, ptys: undefined })).toThrow(/ptys/);
    expect(() => validateSessionManifest({ ...manifest, tmux: undefined })).toThrow(/tmux.path/);
    expect(() => validateSessionManifest({ ...manifest, listeningSockets: [{ path: 'rel' }] })).toThrow(/listeningSockets/);
    expect(() => validateSessionManifest({ ...manifest, kind: 'screen', tmux: undefined })).toThrow(/screen.id/);
  });
});
