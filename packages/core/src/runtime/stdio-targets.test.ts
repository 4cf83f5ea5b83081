import { spawn } from 'node:child_process';
import { openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mntIdOf, mountIdsOf, readStdioProblem, stdioTargetsProblem } from './stdio-targets';

const MOUNTINFO = [
  '612 540 0:52 / / rw,relatime - overlay overlay rw',
  '613 612 0:55 / /proc rw,nosuid - proc proc rw',
  '614 612 0:56 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755',
  '',
].join('\n');

test('reads mount ids and an fd mnt_id', () => {
  expect([...mountIdsOf(MOUNTINFO)]).toEqual([612, 613, 614]);
  expect(mntIdOf('pos:\t0\nflags:\t0102001\nmnt_id:\t612\nino:\t1234\n')).toBe(612);
  expect(mntIdOf('pos:\t0\n')).toBeUndefined();
});

describe('stdioTargetsProblem', () => {
  const ids = mountIdsOf(MOUNTINFO);
  test("a log file on the container's own root mount is the container's file (nginx's error log)", () => {
    const targets = [
      { link: '/dev/null', mntId: 25 },
      { link: '/dev/null', mntId: 25 },
      { link: '/var/log/nginx/error.log', mntId: 612 },
    ];
    expect(stdioTargetsProblem(targets, ids)).toBeUndefined();
  });
  test('a path on a mount the container does not have is a host file', () => {
    const targets = [{ link: '/dev/null', mntId: 25 }, { link: '/tmp/run.out', mntId: 30 }, { link: '/dev/null', mntId: 25 }];
    expect(stdioTargetsProblem(targets, ids)).toBe('its stdout is a host file (/tmp/run.out)');
  });
  test('a path whose mount is unknown is treated as a host file', () => {
    expect(stdioTargetsProblem([{ link: '/x', mntId: undefined }], ids)).toBe('its stdin is a host file (/x)');
  });
  test("terminals and sockets stay refused even on the container's mounts", () => {
    expect(stdioTargetsProblem([{ link: '/dev/pts/0', mntId: 614 }], ids)).toBe('its stdin is a terminal (/dev/pts/0)');
    expect(stdioTargetsProblem([{ link: 'socket:[123]', mntId: 614 }], ids)).toBe('its stdin is a socket or other special file (socket:[123])');
  });
  test('pipes, /dev/null and closed fds are fine', () => {
    expect(stdioTargetsProblem([{ link: 'pipe:[9]', mntId: 12 }, { link: undefined, mntId: undefined }, { link: '/dev/null', mntId: 1 }], ids)).toBeUndefined();
  });
});

test('readStdioProblem: a child whose stdout is a host file (same mount namespace: its mount is ours, so it is "own")', async () => {
  // In our own mount namespace every file is on one of "the container's" mounts: the reader sees what a container
  // would see for its rootfs files. A process that has gone reads as no problem.
  const dir = mkdtempSync(join(tmpdir(), 'ferry-stdio-'));
  const out = openSync(join(dir, 'out.log'), 'a');
  const child = spawn('sleep', ['30'], { stdio: ['ignore', out, 'ignore'] });
  closeSync(out);
  try {
    await new Promise((r) => child.once('spawn', r));
    expect(readStdioProblem(child.pid!)).toBeUndefined();
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  expect(readStdioProblem(2 ** 22 + 7)).toBeUndefined();
});
