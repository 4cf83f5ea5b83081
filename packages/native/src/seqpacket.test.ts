import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FdHandle, NativeError, seqpacketPair, type SeqpacketSocket } from './index';

const sockets: SeqpacketSocket[] = [];
function pair(options?: { maxMessageBytes?: number }): [SeqpacketSocket, SeqpacketSocket] {
  const p = seqpacketPair(options);
  sockets.push(...p);
  return p;
}
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

// A FIFO gives the tests a pipe whose both ends are plain fds in this process.
function makePipe(): { read: FdHandle; write: FdHandle; dispose(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-native-fifo-'));
  const fifo = path.join(dir, 'p');
  execFileSync('mkfifo', [fifo]);
  const read = new FdHandle(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
  const write = new FdHandle(openSync(fifo, constants.O_WRONLY));
  return {
    read,
    write,
    dispose() {
      read.close();
      write.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^flags:\s+([0-7]+)$/m);
  return parseInt(line![1]!, 8);
}
const O_CLOEXEC = 0o2000000;

describe('seqpacketPair', () => {
  it('round-trips messages both ways, keeping boundaries and order', async () => {
    const [a, b] = pair();
    await a.send(Buffer.from('hello'));
    await a.send(Buffer.from('world!'));
    await b.send(new Uint8Array([1, 2, 3]));
    expect((await b.recv())!.data.toString()).toBe('hello');
    expect((await b.recv())!.data.toString()).toBe('world!');
    const back = await a.recv();
    expect([...back!.data]).toEqual([1, 2, 3]);
    expect(back!.fds).toEqual([]);
  });

  it.each([1, 100, 4096, 65_536, 212_993, 1 << 20])('carries a %i-byte message whole', async (size) => {
    const [a, b] = pair();
    const message = Buffer.alloc(size);
    for (let i = 0; i < size; i++) message[i] = (i * 7 + size) & 0xff;
    const [, received] = await Promise.all([a.send(message), b.recv()]);
    expect(received!.data.length).toBe(size);
    expect(received!.data.equals(message)).toBe(true);
  });

  it('queues concurrent sends and recvs in call order, beyond what the kernel buffers', async () => {
    const [a, b] = pair({ maxMessageBytes: 64 << 10 });
    const messages = Array.from({ length: 200 }, (_, i) => Buffer.alloc(16 << 10, i));
    const sent = Promise.all(messages.map((m) => a.send(m)));
    const received = await Promise.all(messages.map(() => b.recv()));
    await sent;
    received.forEach((m, i) => expect(m!.data.equals(messages[i]!)).toBe(true));
  });

  it('resolves a recv() that waits for a later send()', async () => {
    const [a, b] = pair();
    const pending = b.recv();
    await new Promise((r) => setTimeout(r, 20));
    await a.send(Buffer.from('late'));
    expect((await pending)!.data.toString()).toBe('late');
  });

  it('passes several fds in one message; a received pipe end writes into the original pipe', async () => {
    const [a, b] = pair();
    const pipe = makePipe();
    const file = new FdHandle(openSync('/proc/self/status', 'r'));
    try {
      const [other, otherPeer] = pair();
      await a.send(Buffer.from('three fds'), [pipe.write, file, other.fd]);
      const message = await b.recv();
      expect(message!.data.toString()).toBe('three fds');
      expect(message!.fds).toHaveLength(3);
      const [writeEnd, fileCopy, socketCopy] = message!.fds as [FdHandle, FdHandle, FdHandle];
      for (const fd of message!.fds) {
        expect(fd).toBeInstanceOf(FdHandle);
        expect(fdFlags(fd.fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      }
      expect(writeEnd.fd).not.toBe(pipe.write.fd);

      writeSync(writeEnd.fd, 'through the received fd');
      const buf = Buffer.alloc(100);
      const n = readSync(pipe.read.fd, buf);
      expect(buf.subarray(0, n).toString()).toBe('through the received fd');

      expect(readFileSync(`/proc/self/fd/${fileCopy.fd}`, 'utf8')).toContain('Name:');
      // The received socket is the same socket: closing our other copies leaves it connected to otherPeer.
      other.close();
      await otherPeer.send(Buffer.from('x'));
      const got = Buffer.alloc(8);
      expect(readSync(socketCopy.fd, got)).toBe(1);

      for (const fd of message!.fds) fd.close();
      expect(writeEnd.closed).toBe(true);
    } finally {
      file.close();
      pipe.dispose();
    }
  });

  it('sends an empty message when it carries fds', async () => {
    const [a, b] = pair();
    const file = new FdHandle(openSync('/dev/null', 'r'));
    await a.send(Buffer.alloc(0), [file]);
    file.close();
    const message = await b.recv();
    expect(message!.data.length).toBe(0);
    expect(message!.fds).toHaveLength(1);
    message!.fds[0]!.close();
  });

  it('reports the peer closing as null, after the messages it sent, to pending and later recv()s', async () => {
    const [a, b] = pair();
    await a.send(Buffer.from('last words'));
    a.close();
    expect((await b.recv())!.data.toString()).toBe('last words');
    expect(await b.recv()).toBeNull();
    expect(await b.recv()).toBeNull();

    const [c, d] = pair();
    const waiting = d.recv();
    c.close();
    expect(await waiting).toBeNull();
  });

  it('reports a dead child holding the other end as null (the criu swrk set-up)', async () => {
    const [socket, peer] = pair();
    // `cat` echoes each message back: on a SEQPACKET socket one read() is one message, one write() one message.
    const child = spawn('sh', ['-c', 'exec cat <&3 >&3'], { stdio: ['ignore', 'ignore', 'inherit', peer.fd] });
    peer.close();
    await socket.send(Buffer.from('ping'));
    expect((await socket.recv())!.data.toString()).toBe('ping');
    const pending = socket.recv();
    child.kill('SIGKILL');
    expect(await pending).toBeNull();
  });

  it('fails send() on a closed peer with EPIPE', async () => {
    const [a, b] = pair();
    b.close();
    const error = await a.send(Buffer.from('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ syscall: 'sendmsg', code: 'EPIPE', errno: 32 });
    expect((error as Error).message).toMatch(/^sendmsg\(fd=\d+, 1 bytes, 0 fds\): Broken pipe$/);
  });

  it('fails operations on a closed socket, and pending ones when it closes, with EBADF', async () => {
    const [a] = pair();
    const pending = a.recv();
    a.close();
    a.close(); // idempotent
    await expect(pending).rejects.toMatchObject({ name: 'NativeError', code: 'EBADF' });
    await expect(a.send(Buffer.from('x'))).rejects.toMatchObject({ code: 'EBADF', syscall: 'sendmsg' });
    await expect(a.recv()).rejects.toMatchObject({ code: 'EBADF', syscall: 'recvmsg' });
    expect(() => a.fd).toThrow(NativeError);
    expect(a.closed).toBe(true);
  });

  it('fails send() with a bad fd attached with EBADF, and goes on working', async () => {
    const [a, b] = pair();
    const fd = openSync('/dev/null', 'r');
    closeSync(fd); // now certainly not open
    await expect(a.send(Buffer.from('x'), [fd])).rejects.toMatchObject({ code: 'EBADF', syscall: 'sendmsg' });
    const closed = new FdHandle(openSync('/dev/null', 'r'));
    closed.close();
    await expect(a.send(Buffer.from('x'), [closed])).rejects.toMatchObject({ code: 'EBADF' });
    await a.send(Buffer.from('still fine'));
    expect((await b.recv())!.data.toString()).toBe('still fine');
  });

  it('fails a message larger than the send buffer with EMSGSIZE', async () => {
    const [a] = pair({ maxMessageBytes: 4096 });
    const tooBig = Buffer.alloc(4 << 20);
    await expect(a.send(tooBig)).rejects.toMatchObject({ code: 'EMSGSIZE' });
  });

  it('rejects an aborted recv() without losing the message for the next one', async () => {
    const [a, b] = pair();
    const controller = new AbortController();
    const aborted = b.recv({ signal: controller.signal });
    controller.abort(new Error('timed out'));
    await expect(aborted).rejects.toThrow('timed out');
    await expect(b.recv({ signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
    await a.send(Buffer.from('kept'));
    expect((await b.recv())!.data.toString()).toBe('kept');
  });

  it('checks its arguments', async () => {
    const [a] = pair();
    await expect(a.send(Buffer.alloc(0))).rejects.toThrow(RangeError);
    await expect(a.send('text' as unknown as Buffer)).rejects.toThrow(TypeError);
    await expect(a.send(Buffer.from('x'), [-1])).rejects.toThrow(TypeError);
    await expect(a.recv({ sginal: undefined } as never)).rejects.toThrow(
      /unknown option "sginal"; did you mean "signal"\?/,
    );
    await expect(a.recv({ signal: 'soon' } as never)).rejects.toThrow(TypeError);
    expect(() => seqpacketPair({ maxMessageBytes: -1 })).toThrow(RangeError);
  });

  it('closes on dispose', () => {
    let fd: number;
    {
      using socket = seqpacketPair()[0];
      fd = socket.fd;
    }
    expect(() => readFileSync(`/proc/self/fdinfo/${fd}`)).toThrow(/ENOENT/);
  });
});
