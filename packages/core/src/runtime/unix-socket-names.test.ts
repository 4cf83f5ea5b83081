import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lstatInRoot, parseProcNetUnix, unnamedListenerWarning, unnamedUnixListeners } from './unix-socket-names';

// /proc/net/unix of the supervisor row's container after its move (supervisord's socket, bound under a temporary name).
const TABLE = `Num       RefCount Protocol Flags    Type St Inode Path
00000000cbd2c32d: 00000002 00000000 00010000 0001 01 5862213 /var/run/supervisor.sock.1
00000000aa000001: 00000003 00000000 00000000 0001 03 5862300
00000000aa000002: 00000002 00000000 00010000 0001 01 5862301 @abstract name
00000000aa000003: 00000002 00000000 00000000 0002 01 5862302 /run/with space.sock
`;

test('parseProcNetUnix: inode, listening flag and path (spaces kept, unbound without one)', () => {
  expect(parseProcNetUnix(TABLE)).toEqual([
    { inode: 5862213, listening: true, path: '/var/run/supervisor.sock.1' },
    { inode: 5862300, listening: false },
    { inode: 5862301, listening: true, path: '@abstract name' },
    { inode: 5862302, listening: false, path: '/run/with space.sock' },
  ]);
});

describe('with files', () => {
  let dir: string;
  const servers: Server[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-unix-names-'));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });
  const listen = (path: string) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(path, () => resolve(s));
      servers.push(s);
    });

  test('lstatInRoot follows an absolute link inside the root, never out of it', () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'run'), { recursive: true });
    mkdirSync(join(root, 'var'));
    symlinkSync('/run', join(root, 'var', 'run'));
    mkdirSync(join(root, 'etc'));
    symlinkSync('../../../../../run/./x', join(root, 'etc', 'up'));
    mkdirSync(join(root, 'run', 'x'));
    expect(lstatInRoot(root, '/var/run/x')?.isDirectory()).toBe(true);
    expect(lstatInRoot(root, '/etc/up')?.isDirectory()).toBe(true); // '..' stops at the root
    expect(lstatInRoot(root, '/var/run/missing')).toBeUndefined();
  });

  test('a listening socket whose bound name was unlinked, reachable only through a hard link, is found; a named one is not', async () => {
    const named = join(dir, 'named.sock');
    await listen(named);
    const temp = join(dir, 'control.sock.1');
    await listen(temp);
    linkSync(temp, join(dir, 'control.sock')); // what supervisord does: link the real name, drop the temporary one
    unlinkSync(temp);
    const found = unnamedUnixListeners(process.pid).filter((l) => l.name.startsWith(dir));
    expect(found).toEqual([{ pid: process.pid, comm: expect.any(String), name: temp }]);
    expect(unnamedListenerWarning('web', found[0]!)).toMatch(new RegExp(`container web: process ${process.pid} .* bound as ${temp}, a name since unlinked`));
  });
});
