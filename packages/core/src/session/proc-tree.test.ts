import { parseProcNetUnix, parseProcStat, ptyIndexOfTtyNr } from './proc-tree';

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
