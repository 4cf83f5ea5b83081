import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { acceptSocket, connectSocket, createSocket, listenUnix, NativeError, pidfdGetfd, pidfdOpen, socketName, socketQueues, StreamSocket, streamSocketPair } from './index';

describe('streamSocketPair and StreamSocket', () => {
  it('moves bytes both ways, with a peek that leaves them queued', async () => {
    const [a, b] = streamSocketPair().map((h) => StreamSocket.adopt(h)) as [StreamSocket, StreamSocket];
    try {
      await a.write(Buffer.from('hello world'));
      const peeked = await b.read(5, { peek: true, exact: true });
      expect(peeked!.data.toString()).toBe('hello');
      expect((await b.read(11, { exact: true }))!.data.toString()).toBe('hello world');
      await b.write(Buffer.from('back'));
      expect((await a.read(64))!.data.toString()).toBe('back');
    } finally {
      a.close();
      b.close();
    }
  });

  it('holds an exact peek until all its bytes have arrived, and leaves them queued', async () => {
    const [a, b] = streamSocketPair().map((h) => StreamSocket.adopt(h)) as [StreamSocket, StreamSocket];
    try {
      await a.write(Buffer.from('hel'));
      const peeked = b.read(5, { peek: true, exact: true });
      const read = b.read(6, { exact: true }); // served after the peek, in call order
      await new Promise((resolve) => setImmediate(resolve));
      await a.write(Buffer.from('lo!'));
      expect((await peeked)!.data.toString()).toBe('hello');
      expect((await read)!.data.toString()).toBe('hello!');
    } finally {
      a.close();
      b.close();
    }
  });

  it('writes more than the socket buffer holds, resolving once the reader has taken it', async () => {
    const [a, b] = streamSocketPair().map((h) => StreamSocket.adopt(h)) as [StreamSocket, StreamSocket];
    try {
      const big = Buffer.alloc(8 << 20, 7);
      const written = a.write(big);
      const got = await b.read(big.length, { exact: true });
      await written;
      expect(got!.data.equals(big)).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('passes fds with the bytes and reports a clean end as null', async () => {
    const [a, b] = streamSocketPair().map((h) => StreamSocket.adopt(h)) as [StreamSocket, StreamSocket];
    const [x, y] = streamSocketPair();
    try {
      await a.write(Buffer.from([1]), [x]);
      const chunk = await b.read(1);
      expect(chunk!.fds).toHaveLength(1);
      const passed = StreamSocket.adopt(chunk!.fds[0]!);
      const other = StreamSocket.adopt(y);
      await passed.write(Buffer.from('via passed fd'));
      expect((await other.read(64))!.data.toString()).toBe('via passed fd');
      passed.close();
      other.close();
      a.close();
      expect(await b.read(1)).toBeNull();
    } finally {
      x.close();
      b.close();
    }
  });

  it('rejects an exact read cut short by the end of the stream', async () => {
    const [a, b] = streamSocketPair().map((h) => StreamSocket.adopt(h)) as [StreamSocket, StreamSocket];
    await a.write(Buffer.from('abc'));
    a.close();
    await expect(b.read(8, { exact: true })).rejects.toMatchObject({ name: 'NativeError', code: 'EPIPE' });
    b.close();
  });

  it('reports queued bytes with socketQueues', async () => {
    const [a, b] = streamSocketPair();
    const sa = StreamSocket.adopt(a);
    await sa.write(Buffer.alloc(100));
    expect(socketQueues(b).unread).toBe(100);
    sa.close();
    b.close();
  });
});

describe('unix listeners', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-native-sk-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a connection made with connectSocket, and names both ends', async () => {
    const path = join(dir, 's.sock');
    using listener = listenUnix(path);
    expect(socketName(listener)).toEqual({ family: 'unix', address: path, port: 0 });
    const fresh = await createSocket({ family: 'unix', type: 'stream' });
    const accepted = acceptSocket(listener, 5_000);
    await connectSocket(fresh, 'unix', path);
    expect(socketName(fresh, true).address).toBe(path);
    const server = StreamSocket.adopt(await accepted);
    const c = StreamSocket.adopt(fresh);
    await c.write(Buffer.from('ping'));
    expect((await server.read(4, { exact: true }))!.data.toString()).toBe('ping');
    server.close();
    c.close();
  });

  it('gives up accepting after the timeout with ETIMEDOUT', async () => {
    using listener = listenUnix(join(dir, 't.sock'));
    await expect(acceptSocket(listener, 50)).rejects.toMatchObject({ code: 'ETIMEDOUT', syscall: 'accept' });
  });

  it('refuses a connection to a path nobody listens on', async () => {
    using s = await createSocket({ family: 'unix', type: 'stream' });
    await expect(connectSocket(s, 'unix', join(dir, 'none.sock'))).rejects.toBeInstanceOf(NativeError);
  });
});

describe('pidfdGetfd', () => {
  it("duplicates a child's fd into this process", async () => {
    // The child holds one end of a pair on its fd 3; taking that fd back and writing to it reaches our end.
    const [mine, theirs] = streamSocketPair();
    const child = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore', theirs.fd] });
    theirs.close();
    try {
      using pidfd = pidfdOpen(child.pid!);
      const taken = StreamSocket.adopt(pidfdGetfd(pidfd, 3));
      const ours = StreamSocket.adopt(mine);
      await taken.write(Buffer.from('taken'));
      expect((await ours.read(5, { exact: true }))!.data.toString()).toBe('taken');
      taken.close();
      ours.close();
      expect(() => pidfdGetfd(pidfd, 999)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'pidfd_getfd' }));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

