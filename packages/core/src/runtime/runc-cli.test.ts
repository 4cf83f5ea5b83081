import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuncCli, runcCheckpointArgs, runcErrorMessages } from './runc-cli';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-runc-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fakeRunc(body: string): string {
  const path = join(dir, 'runc');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('runcErrorMessages', () => {
  test('takes error and fatal messages from logrus text, unescaped, once', () => {
    const stderr = [
      'time="2026-11-27T12:22:53Z" level=warning msg="Failed to remove cgroup (will retry)" error="rmdir /sys/fs/cgroup/x: device or resource busy"',
      'time="2026-11-27T12:22:53Z" level=error msg="criu failed: type NOTIFY errno 0\\nlog file: /tmp/w/restore.log"',
      'container does not exist',
      'time="2026-11-27T12:35:31Z" level=error msg="container does not exist"',
    ].join('\n');
    expect(runcErrorMessages(stderr)).toEqual(['criu failed: type NOTIFY errno 0\nlog file: /tmp/w/restore.log', 'container does not exist']);
  });

  test('reads --log-format json lines', () => {
    const log = '{"level":"warning","msg":"x","time":"t"}\n{"level":"error","msg":"container with given ID already exists","time":"t"}\n';
    expect(runcErrorMessages(log)).toEqual(['container with given ID already exists']);
  });
});

test('puts --root and --log before the command only when asked', () => {
  expect(new RuncCli({ runcPath: 'runc' }).argv(['state', 'web'])).toEqual(['state', 'web']);
  expect(new RuncCli({ runcPath: 'runc', runcRoot: '/run/r' }).argv(['list'], '/w/runc.log')).toEqual([
    '--root',
    '/run/r',
    '--log',
    '/w/runc.log',
    '--log-format',
    'json',
    'list',
  ]);
});

test('captures stdout, stderr and the exit code of a failing runc', async () => {
  const cli = new RuncCli({ runcPath: fakeRunc('echo "args: $*"; echo \'time="t" level=error msg="container does not exist"\' >&2; exit 1') });
  const outcome = await cli.run(['state', 'web']);
  expect(outcome).toMatchObject({ ok: false, exitCode: 1, stdout: 'args: state web\n', errorText: 'container does not exist', timedOut: false });
});

test('detached mode gives runc /dev/null stdio and reads its JSON log', async () => {
  const body = [
    'log=""; while [ $# -gt 0 ]; do [ "$1" = --log ] && log="$2"; shift; done',
    'a=$(readlink /proc/$$/fd/0); b=$(readlink /proc/$$/fd/1); c=$(readlink /proc/$$/fd/2)',
    `printf '%s\\n' "$a" "$b" "$c" > ${dir}/stdio`,
    'echo \'{"level":"error","msg":"criu failed","time":"t"}\' > "$log"',
    'exit 1',
  ].join('\n');
  const cli = new RuncCli({ runcPath: fakeRunc(body) });
  const outcome = await cli.run(['restore', '-d', 'x'], { logFile: join(dir, 'runc.log') });
  expect(readFileSync(join(dir, 'stdio'), 'utf8')).toBe('/dev/null\n/dev/null\n/dev/null\n');
  expect(outcome.errorText).toBe('criu failed');
});

test('at the deadline it kills runc\'s descendants first, so runc can clean up and exit by itself', async () => {
  const cli = new RuncCli({ runcPath: fakeRunc(`sleep 1000 & echo $! > ${dir}/child; wait; echo cleaned > ${dir}/cleanup; exit 1`) });
  const outcome = await cli.run(['restore'], { timeoutMs: 300 });
  expect(outcome.timedOut).toBe(true);
  expect(outcome.ok).toBe(false);
  expect(readFileSync(join(dir, 'cleanup'), 'utf8')).toBe('cleaned\n');
  const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
  expect(() => process.kill(child, 0)).toThrow();
});

test('an abort works like the deadline; an already aborted signal does not start runc', async () => {
  const cli = new RuncCli({ runcPath: fakeRunc(`sleep 1000 & wait; exit 1`) });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  expect(await cli.run(['checkpoint'], { signal: controller.signal })).toMatchObject({ aborted: true, ok: false });
  const started = await cli.run(['checkpoint'], { signal: controller.signal });
  expect(started).toMatchObject({ aborted: true, exitCode: null });
});

test('runc that does not exist is ERR_RUNTIME_UNAVAILABLE', async () => {
  await expect(new RuncCli({ runcPath: join(dir, 'nope') }).run(['list'])).rejects.toMatchObject({ code: 'ERR_RUNTIME_UNAVAILABLE' });
});

describe('runcCheckpointArgs', () => {
  const base = ['checkpoint', '--image-path', '/i', '--work-path', '/w'];
  it('a held dump with CRIU flags and a page server', () => {
    expect(
      runcCheckpointArgs('/i', '/w', { imagesDir: '/i', leaveRunning: true, tcpEstablished: true, fileLocks: true, extUnixSk: true, pageServer: { address: '127.0.0.1', port: 7 } }, 'web'),
    ).toEqual([...base, '--leave-running', '--tcp-established', '--file-locks', '--ext-unix-sk', '--page-server', '127.0.0.1:7', 'web']);
  });
  it('a pre-dump on a parent never asks to leave running (a pre-dump always does)', () => {
    expect(runcCheckpointArgs('/i', '/w', { imagesDir: '/i', preDump: true, parentImage: '../1', leaveRunning: true }, 'web')).toEqual([
      ...base,
      '--pre-dump',
      '--parent-path',
      '../1',
      'web',
    ]);
  });
  it('a lazy dump serves its pages itself and reports readiness on fd 3', () => {
    const lazyPages = { address: '127.0.0.1', port: 9, onReady: () => undefined };
    expect(runcCheckpointArgs('/i', '/w', { imagesDir: '/i', lazyPages, pageServer: { address: '10.0.0.1', port: 1 } }, 'web')).toEqual([
      ...base,
      '--lazy-pages',
      '--page-server',
      '127.0.0.1:9',
      '--status-fd',
      '3',
      'web',
    ]);
  });
});
