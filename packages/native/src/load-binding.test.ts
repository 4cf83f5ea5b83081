import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { binding, bindingPaths, loadBinding } from './load-binding';
import { NativeError } from './native-error';

describe('loadBinding', () => {
  it('tries build/Release then build/Debug', () => {
    expect(bindingPaths.map((p) => path.relative(path.resolve(__dirname, '..'), p))).toEqual([
      'build/Release/ferry_native.node',
      'build/Debug/ferry_native.node',
    ]);
  });

  it('lists every path it tried, why each failed, and how to build', () => {
    const garbage = path.join(tmpdir(), `ferry-native-garbage-${process.pid}.node`);
    writeFileSync(garbage, 'not an ELF file');
    const missing = '/nonexistent/build/Release/ferry_native.node';
    let message = '';
    try {
      loadBinding([missing, garbage]);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(`${missing}: not found`);
    expect(message).toMatch(new RegExp(`${garbage}: .*(invalid ELF header|too short)`));
    expect(message).toContain('npm install');
    expect(message).toContain('npx node-gyp rebuild');
  });

  it('hands the NativeError class to C++, which builds errors with syscall, errno and code', () => {
    let error: unknown;
    try {
      binding().closeFd(1 << 30);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({
      name: 'NativeError',
      syscall: 'close',
      errno: 9,
      code: 'EBADF',
      message: `close(fd=${1 << 30}): Bad file descriptor`,
    });
  });
});

describe('NativeError.fromErrno', () => {
  it('words errors like C++ does', () => {
    const error = NativeError.fromErrno('recvmsg', 'fd=5', 104);
    expect(error).toMatchObject({ code: 'ECONNRESET', errno: 104, message: 'recvmsg(fd=5): Connection reset by peer' });
  });
});
