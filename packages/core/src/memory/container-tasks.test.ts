import { parseMaps } from '@ferry/native';
import { worthReading } from './container-tasks';

const maps = parseMaps(
  [
    '00400000-00452000 r-xp 00000000 08:02 173521 /srv/app/bin',
    '00651000-00652000 rw-p 00051000 08:02 173521 /srv/app/bin',
    '01e2c000-01e4d000 rw-p 00000000 00:00 0 [heap]',
    '7f0c00000000-7f0c40000000 rw-p 00000000 00:00 0',
    '7f0c50000000-7f0c50100000 rw-s 00000000 00:05 4242 /dev/zero (deleted)',
    '7f0c60000000-7f0c60200000 r--p 00000000 08:02 99 /usr/lib/locale/C.utf8/LC_CTYPE',
    '7ffd1b3d2000-7ffd1b3f3000 rw-p 00000000 00:00 0 [stack]',
    '7ffd1b3f6000-7ffd1b3fa000 r--p 00000000 00:00 0 [vvar]',
    '7ffd1b3fa000-7ffd1b3fc000 r-xp 00000000 00:00 0 [vdso]',
    '7f0c70000000-7f0c70001000 ---p 00000000 00:00 0',
  ].join('\n'),
);

test('pre-copy reads private memory the task wrote, not shared memory, read-only file mappings or kernel pages', () => {
  expect(maps.filter(worthReading).map((r) => r.pathname || r.start.toString(16))).toEqual(['/srv/app/bin', '[heap]', '7f0c00000000', '[stack]']);
});
