/**
 * The private page paths moves use (root): the destination's link (a unix socket in a 0700 directory joined to a
 * --ps-socket pair) and the source's private network namespace. Real sockets; CRIU's side is played by the test.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTestDir } from '@ferry/core/testing';
import { createDumpNetns, dialLazyDumpOf, hasOwnNetns } from './dump-netns';
import { openPageLink } from './destination-link';

jest.setTimeout(60_000);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-private-paths-'));
});
afterEach(() => removeTestDir(dir));

const connected = (s: Socket) => new Promise<Socket>((resolve, reject) => s.once('connect', () => resolve(s)).once('error', reject));
const firstData = (s: Socket) => new Promise<string>((resolve) => s.once('data', (c: Buffer) => resolve(c.toString())));

/** What uid 65534 gets connecting to `path`, or to 127.0.0.1:port in this namespace. */
function asNobody(target: string | number): string {
  const script = `const s = require('net').connect(${JSON.stringify(target)}${typeof target === 'number' ? ", '127.0.0.1'" : ''});
    s.once('connect', () => { process.stdout.write('CONNECTED'); s.destroy(); });
    s.once('error', (e) => process.stdout.write(e.code));`;
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return r.stdout;
}

test("the destination link: root's one connection reaches CRIU's end both ways, uid 65534 is refused, the listener goes", async () => {
  const link = await openPageLink(join(dir, 'link'));
  expect(asNobody(link.socketPath)).toBe('EACCES');
  const criu = new (require('node:net').Socket)({ fd: link.pair.criuEnd.release(), readable: true, writable: true }) as Socket;
  link.attach();
  const source = await connected(connect(link.socketPath));
  criu.write('GET');
  expect(await firstData(source)).toBe('GET');
  source.write('PAGE');
  expect(await firstData(criu)).toBe('PAGE');
  // Accepted once: the path is gone, nobody else can connect any more.
  await expect(connected(connect(link.socketPath))).rejects.toMatchObject({ code: 'ENOENT' });
  // The source's end reaches CRIU as EOF (a lost link ends the daemon, as over TCP).
  const ended = new Promise<void>((resolve) => criu.once('end', () => resolve()));
  source.end();
  await ended;
  criu.destroy();
  link.close();
});

test('the destination link: closed before the source connects, the pending accept ends and the socket is removed', async () => {
  const link = await openPageLink(join(dir, 'link'));
  link.attach();
  link.close();
  await new Promise((r) => setTimeout(r, 300));
  await expect(connected(connect(link.socketPath))).rejects.toMatchObject({ code: 'ENOENT' });
});

test("the source's namespace: a listener there is reachable by ferry only, not from this host's namespace", async () => {
  const netns = await createDumpNetns();
  try {
    const listener = await netns.listen();
    expect(asNobody(listener.port)).toBe('ECONNREFUSED');
    await expect(connected(connect(listener.port, '127.0.0.1'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const client = await netns.dial(listener.port);
    const server = await listener.accepted;
    client.write('pages');
    expect(await firstData(server)).toBe('pages');
    client.destroy();
    server.destroy();
    listener.close();
  } finally {
    netns.close();
  }
});

test('recovery finds a dump process inside the namespace; none inside: a clear error', async () => {
  await expect(dialLazyDumpOf([process.pid], 1)).rejects.toThrow(/private network namespace/);
  expect(hasOwnNetns(process.pid)).toBe(false);
  expect(hasOwnNetns(undefined)).toBe(false);
});
