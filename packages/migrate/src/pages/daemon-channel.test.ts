import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamSocket, streamSocketPair, type FdHandle } from '@ferry/core';
import { serveDaemon, type DaemonGet } from './daemon-channel';
import { encodeGetRequest, encodeIov, encodePagesHeader, PS_IOV_FORCE_CLOSE } from './ps-protocol';

const PAGE = 4096;
const pagesFor = (get: DaemonGet, nr: number) => Buffer.alloc(nr * PAGE, Number(get.vaddr / 4096n) & 0xff);
const answerOf = (get: DaemonGet, nr: number) => Buffer.concat([encodePagesHeader(get.pid, get.vaddr, nr), pagesFor(get, nr)]);
const forceClose = () => encodeIov({ cmd: PS_IOV_FORCE_CLOSE, flags: 0, nrPages: 0, vaddr: 0n, dstId: 0n });

/** Counts what this test's side of a socketpair wrote and read, standing in for TCP's counters. */
function counted(initial = { bytesWritten: 0n, bytesRead: 0n }) {
  return { ...initial };
}

describe('serveDaemon', () => {
  let dir: string;
  let relayEnd: FdHandle;
  let daemon: StreamSocket;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-daemon-ch-'));
    const [a, b] = streamSocketPair();
    relayEnd = a;
    daemon = StreamSocket.adopt(b);
  });
  afterEach(() => {
    relayEnd.close();
    daemon.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers GETs in order, partial answers allowed, and ends on FORCE_CLOSE with a 0 status', async () => {
    const gets = [
      { pid: 1, vaddr: 0x10000n, nrPages: 1 },
      { pid: 1, vaddr: 0x20000n, nrPages: 64 },
      { pid: 2, vaddr: 0x30000n, nrPages: 4 },
    ];
    for (const g of gets) await daemon.write(encodeGetRequest(g.pid, g.vaddr, g.nrPages));
    await daemon.write(forceClose());
    const answered: [DaemonGet, number][] = [];
    const served = serveDaemon(
      { socket: relayEnd, stateFile: join(dir, 'state'), counters: () => counted() },
      { pages: async (get) => pagesFor(get, Math.min(get.nrPages, 16)), answered: (g, n) => answered.push([g, n]) },
    );
    const expected = Buffer.concat([answerOf(gets[0]!, 1), answerOf(gets[1]!, 16), answerOf(gets[2]!, 4), Buffer.alloc(4)]);
    const got = await daemon.read(expected.length, { exact: true });
    expect(got!.data.equals(expected)).toBe(true);
    expect(await served).toEqual({ end: 'close', requests: 4, pagesAnswered: 21 });
    expect(answered.map(([, n]) => n)).toEqual([1, 16, 4]);
    // One record, rewritten in place: the last answer (the close, request 3) and the bytes written before it.
    const state = readFileSync(join(dir, 'state'));
    expect(state.length).toBe(32);
    expect(state.readBigUInt64LE(8)).toBe(3n);
    expect(state.readBigUInt64LE(16)).toBe(BigInt(expected.length - 4));
    expect(state.readBigUInt64LE(24)).toBe(4n);
  });

  it('finishes the answer a dead predecessor had half written, byte for byte, then goes on', async () => {
    const g0 = { pid: 1, vaddr: 0x5000n, nrPages: 8 };
    const g1 = { pid: 1, vaddr: 0x9000n, nrPages: 2 };
    await daemon.write(encodeGetRequest(g0.pid, g0.vaddr, g0.nrPages));
    await daemon.write(encodeGetRequest(g1.pid, g1.vaddr, g1.nrPages));
    // The predecessor chose 3 pages for g0, recorded it, wrote 100 bytes, and died.
    const full0 = answerOf(g0, 3);
    const state = Buffer.alloc(32);
    state.writeUInt32LE(0x53525046, 0);
    state.writeBigUInt64LE(0n, 8);
    state.writeBigUInt64LE(0n, 16);
    state.writeBigUInt64LE(BigInt(full0.length), 24);
    writeFileSync(join(dir, 'state'), state);
    const predecessor = StreamSocket.adopt(relayEnd.dup());
    await predecessor.write(full0.subarray(0, 100));
    predecessor.close();

    const asked: (number | undefined)[] = [];
    const served = serveDaemon(
      { socket: relayEnd, stateFile: join(dir, 'state'), counters: () => ({ bytesWritten: 100n, bytesRead: 0n }) },
      { pages: async (get, exact) => (asked.push(exact), pagesFor(get, exact ?? get.nrPages)) },
    );
    const expected = Buffer.concat([full0, answerOf(g1, 2)]);
    const got = await daemon.read(expected.length, { exact: true });
    expect(got!.data.equals(expected)).toBe(true);
    expect(asked).toEqual([3, undefined]);
    daemon.close();
    expect(await served).toMatchObject({ end: 'eof', requests: 2 });
  });

  it('consumes without writing a request a predecessor answered in full but had not consumed', async () => {
    const g0 = { pid: 1, vaddr: 0x5000n, nrPages: 2 };
    await daemon.write(encodeGetRequest(g0.pid, g0.vaddr, g0.nrPages));
    await daemon.write(forceClose());
    const full0 = answerOf(g0, 2);
    const state = Buffer.alloc(32);
    state.writeUInt32LE(0x53525046, 0);
    state.writeBigUInt64LE(BigInt(full0.length), 24);
    writeFileSync(join(dir, 'state'), state);
    const served = serveDaemon(
      { socket: relayEnd, stateFile: join(dir, 'state'), counters: () => ({ bytesWritten: BigInt(full0.length), bytesRead: 0n }) },
      { pages: async () => { throw new Error('must not be asked'); } },
    );
    expect((await daemon.read(4, { exact: true }))!.data).toEqual(Buffer.alloc(4));
    expect(await served).toMatchObject({ end: 'close' });
  });

  it('refuses to go on when the counts and the state disagree', async () => {
    await expect(
      serveDaemon({ socket: relayEnd, stateFile: join(dir, 'none'), counters: () => ({ bytesWritten: 10n, bytesRead: 32n }) }, { pages: async () => Buffer.alloc(0) }),
    ).rejects.toMatchObject({ code: 'ERR_PAGES_PROTOCOL' });
    await expect(
      serveDaemon({ socket: relayEnd, stateFile: join(dir, 'none'), counters: () => ({ bytesWritten: 0n, bytesRead: 31n }) }, { pages: async () => Buffer.alloc(0) }),
    ).rejects.toMatchObject({ code: 'ERR_PAGES_PROTOCOL' });
  });
});
