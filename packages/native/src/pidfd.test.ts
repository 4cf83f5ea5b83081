import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';

import { FdHandle, NativeError, pidfdOpen, pidfdSendSignal } from './index';

function startSleeper() {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_, signal) => resolve(signal)));
  return { child, exited };
}

describe('pidfd', () => {
  it('signals the process it was opened for, then reports ESRCH once it has gone', async () => {
    const { child, exited } = startSleeper();
    using pidfd = pidfdOpen(child.pid!);
    expect(pidfd).toBeInstanceOf(FdHandle);
    pidfdSendSignal(pidfd, 0);
    pidfdSendSignal(pidfd, 'SIGTERM');
    expect(await exited).toBe('SIGTERM');
    const error = (() => {
      try {
        pidfdSendSignal(pidfd, 'SIGKILL');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ syscall: 'pidfd_send_signal', code: 'ESRCH', errno: 3 });
    expect((error as Error).message).toBe(`pidfd_send_signal(fd=${pidfd.fd}, signal=9): No such process`);
  });

  it('fails to open a pid that does not exist with ESRCH', async () => {
    const { child, exited } = startSleeper();
    child.kill('SIGKILL');
    await exited;
    expect(() => pidfdOpen(child.pid!)).toThrow(
      expect.objectContaining({ name: 'NativeError', code: 'ESRCH', message: `pidfd_open(pid=${child.pid}): No such process` }),
    );
  });

  it('checks its arguments', () => {
    expect(() => pidfdOpen(-1)).toThrow(RangeError);
    const handle = pidfdOpen(process.pid);
    expect(() => pidfdSendSignal(handle, 'SIGNOPE' as never)).toThrow(RangeError);
    expect(() => pidfdSendSignal(3 as never, 0)).toThrow(TypeError);
    handle.close();
  });
});

describe('FdHandle', () => {
  it('closes once, on close() or dispose, and refuses to hand out a closed fd', () => {
    const handle = new FdHandle(openSync('/dev/null', 'r'));
    const fd = handle.fd;
    expect(existsSync(`/proc/self/fd/${fd}`)).toBe(true);
    handle.close();
    handle.close();
    handle[Symbol.dispose]();
    expect(existsSync(`/proc/self/fd/${fd}`)).toBe(false);
    expect(handle.closed).toBe(true);
    expect(() => handle.fd).toThrow(expect.objectContaining({ name: 'NativeError', code: 'EBADF' }));
    expect(String(handle)).toBe('FdHandle(closed)');
  });

  it('closes at the end of a using block', () => {
    let fd: number;
    {
      using handle = new FdHandle(openSync('/dev/null', 'r'));
      fd = handle.fd;
    }
    expect(existsSync(`/proc/self/fd/${fd}`)).toBe(false);
  });

  it('checks its fd', () => {
    expect(() => new FdHandle(-1)).toThrow(RangeError);
    expect(() => new FdHandle('3' as never)).toThrow(TypeError);
  });
});
