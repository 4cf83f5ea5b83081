/**
 * Network namespaces need CAP_SYS_ADMIN: a private namespace with lo up, sockets made inside it, and a TCP pair whose
 * byte counters a successor can read.
 */
import { readlinkSync } from 'node:fs';
import { connect } from 'node:net';

import {
  connectSocket,
  createNetns,
  socketInNetns,
  socketName,
  StreamSocket,
  tcpCounters,
  tcpLoopbackPair,
  tcpNoDelay,
} from './index';

describe('createNetns', () => {
  it('makes a namespace of its own, different from this process, with lo up', async () => {
    using netns = await createNetns();
    const mine = readlinkSync('/proc/self/ns/net');
    const theirs = readlinkSync(`/proc/self/fd/${netns.fd}`);
    expect(theirs).toMatch(/^net:\[\d+\]$/);
    expect(theirs).not.toBe(mine);
    // lo is up: a listener on 127.0.0.1 inside accepts a connection made inside.
    using listener = await socketInNetns(netns, { family: 'inet', type: 'stream', bind: { address: '127.0.0.1', port: 0 }, listen: 1 });
    const { port } = socketName(listener);
    expect(port).toBeGreaterThan(0);
    using client = await socketInNetns(netns, { family: 'inet', type: 'stream' });
    await connectSocket(client, 'inet', '127.0.0.1', port);
    // This thread never left its namespace: the same port here reaches nothing ferry made.
    expect(readlinkSync('/proc/self/ns/net')).toBe(mine);
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(mine);
  });

  it('keeps its listeners unreachable from the host namespace', async () => {
    using netns = await createNetns();
    using listener = await socketInNetns(netns, { family: 'inet', type: 'stream', bind: { address: '127.0.0.1', port: 0 }, listen: 1 });
    const { port } = socketName(listener);
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(outcome).toBe('ECONNREFUSED');
  });

  it('refuses a bind address of another family with a NativeError', async () => {
    using netns = await createNetns();
    await expect(socketInNetns(netns, { family: 'inet', type: 'stream', bind: { address: '::1', port: 0 } })).rejects.toMatchObject({ name: 'NativeError', code: 'EINVAL' });
  });
});

describe('tcpLoopbackPair', () => {
  it('connects two ends whose counters tell exactly what each side wrote and read', async () => {
    using netns = await createNetns();
    const [a, b] = await tcpLoopbackPair(netns);
    // The namespace handle may go: the sockets keep the namespace alive.
    netns.close();
    // Small requests and answers go at once (Nagle's algorithm made each exchange wait 40 ms for a delayed ACK).
    expect([tcpNoDelay(a), tcpNoDelay(b)]).toEqual([true, true]);
    // The connecting end counts its SYN as one byte written (the kernel's tcpi_bytes_acked); the accepted end is exact.
    expect(tcpCounters(a)).toEqual({ bytesWritten: 1n, bytesRead: 0n, unread: 0, unsent: 0 });
    expect(tcpCounters(b)).toEqual({ bytesWritten: 0n, bytesRead: 0n, unread: 0, unsent: 0 });
    const sa = StreamSocket.adopt(a.dup());
    const sb = StreamSocket.adopt(b.dup());
    await sb.write(Buffer.from('xyz'));
    await sa.read(3, { exact: true });
    await waitUntil(() => tcpCounters(b).unsent === 0);
    expect(tcpCounters(b).bytesWritten).toBe(3n);
    expect(tcpCounters(a).bytesRead).toBe(3n);
    await sa.write(Buffer.alloc(1000, 1));
    const got = await sb.read(600, { exact: true });
    expect(got!.data.length).toBe(600);
    // The reader consumed 600; 400 wait. Counters are per socket, the same through every fd of it.
    await waitUntil(() => tcpCounters(b).unread === 400);
    expect(tcpCounters(a).bytesWritten).toBe(1001n);
    expect(tcpCounters(b).bytesRead).toBe(600n);
    // A peek consumes nothing.
    await sb.read(400, { peek: true, exact: true });
    expect(tcpCounters(b).bytesRead).toBe(600n);
    await sb.read(400, { exact: true });
    expect(tcpCounters(b).bytesRead).toBe(1000n);
    for (const s of [sa, sb]) s.close();
    a.close();
    b.close();
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
