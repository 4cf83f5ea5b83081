import { devLabel, parseProcLocks } from './shared-storage-locks';

test('/proc/locks: granted POSIX, FLOCK and OFD locks with hex maj:min and inode; waiters left out', () => {
  const text = [
    '1: POSIX  ADVISORY  WRITE 22713 00:2f:1835053 0 EOF',
    '1: -> POSIX  ADVISORY  WRITE 26799 00:2f:1835053 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 812 fd:01:131 0 EOF',
    '3: OFDLCK ADVISORY  READ -1 08:11:77 0 EOF',
    '',
  ].join('\n');
  expect(parseProcLocks(text)).toEqual([
    { kind: 'POSIX', pid: 22713, dev: '00:2f', inode: 1835053 },
    { kind: 'FLOCK', pid: 812, dev: 'fd:01', inode: 131 },
    { kind: 'OFDLCK', pid: -1, dev: '08:11', inode: 77 },
  ]);
});

test('a stat dev number prints as the kernel prints it in /proc/locks', () => {
  expect(devLabel(0x2f)).toBe('00:2f');
  expect(devLabel((0xfd << 8) | 1)).toBe('fd:01');
  expect(devLabel((8 << 8) | 0x11)).toBe('08:11');
  expect(devLabel(0x100811)).toBe('08:111'); // minor 0x111: its high bits sit above the major's 12
});
