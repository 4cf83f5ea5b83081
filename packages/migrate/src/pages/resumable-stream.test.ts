import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '@ferry/core';
import { ResumableEnd } from './resumable-stream';

let dir: string;
let server: Server;
let accepted: Array<(s: Socket) => void> = [];
const sockets: Socket[] = [];
const ends: ResumableEnd[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-resumable-'));
  // Half-open like CRIU's sockets: an EOF one way must not close the other way.
  server = createServer({ allowHalfOpen: true }, (s) => accepted.shift()!(s));
  server.listen(join(dir, 'pairs.sock'));
  await once(server, 'listening');
});

afterEach(() => {
  for (const e of ends.splice(0)) e.detach();
  for (const s of sockets.splice(0)) s.destroy();
  server.close();
  accepted = [];
  rmSync(dir, { recursive: true, force: true });
});

/** Two connected unix sockets. */
async function pair(): Promise<[Socket, Socket]> {
  const other = new Promise<Socket>((resolve) => accepted.push(resolve));
  const one = createConnection({ path: join(dir, 'pairs.sock'), allowHalfOpen: true });
  const two = await other;
  sockets.push(one, two);
  return [one, two];
}

/** Everything a socket receives, and a way to wait for an amount of it. */
function collect(s: Socket): { bytes: () => Buffer; size: () => number; until: (n: number) => Promise<void> } {
  const chunks: Buffer[] = [];
  let size = 0;
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    size += c.length;
    for (const w of waiting.filter((w) => size >= w.n)) { waiting.splice(waiting.indexOf(w), 1); w.resolve(); }
  });
  return {
    bytes: () => Buffer.concat(chunks),
    size: () => size,
    until: (n) => (size >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }))),
  };
}

async function eventually(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, 2));
}

function end(local: Socket, options?: ConstructorParameters<typeof ResumableEnd>[1]): ResumableEnd {
  const e = new ResumableEnd(local, options);
  e.on('error', () => undefined);
  ends.push(e);
  return e;
}

/** The CRIU stand-ins (srcCriu, dstCriu), the two ResumableEnds holding their peers, and a way to (re)link them. */
async function stream(options = { ackEveryBytes: 64 << 10, maxUnackedBytes: 1 << 20 }) {
  const [srcCriu, srcLocal] = await pair();
  const [dstCriu, dstLocal] = await pair();
  const a = end(srcLocal, options);
  const b = end(dstLocal, options);
  const link = async (): Promise<[Socket, Socket]> => {
    const [la, lb] = await pair();
    await Promise.all([a.attach(la), b.attach(lb)]);
    return [la, lb];
  };
  return { srcCriu, srcLocal, dstCriu, dstLocal, a, b, link };
}

describe('ResumableEnd', () => {
  it('carries 8 MiB one way and small requests the other way byte-exact across broken and replaced links', async () => {
    const { srcCriu, dstCriu, a, b, link } = await stream();
    const lost = { a: 0, b: 0 };
    a.on('link-lost', () => lost.a++);
    b.on('link-lost', () => lost.b++);
    const pages = randomBytes(8 << 20);
    const requests = Array.from({ length: 200 }, () => randomBytes(40));
    const atDst = collect(dstCriu);
    const atSrc = collect(srcCriu);
    let asked = 0;
    dstCriu.on('data', () => { if (asked < requests.length) dstCriu.write(requests[asked++]!); });
    let [la] = await link();
    srcCriu.write(pages);
    for (const [i, mib] of [1, 3, 5, 7].entries()) {
      await atDst.until(mib << 20);
      expect(atDst.size()).toBeLessThan(pages.length);
      if (i % 2 === 0) {
        // The link dies under both ends: each sees it and a new one is attached.
        const seen = Promise.all([once(a, 'link-lost'), once(b, 'link-lost')]);
        la.destroy();
        await seen;
        expect(a.linked).toBe(false);
      }
      [la] = await link();
      expect(a.linked && b.linked).toBe(true);
    }
    await atDst.until(pages.length);
    while (asked < requests.length) dstCriu.write(requests[asked++]!);
    await atSrc.until(requests.length * 40);
    expect(atDst.bytes().equals(pages)).toBe(true);
    expect(atSrc.bytes().equals(Buffer.concat(requests))).toBe(true);
    expect([a.bytesSent, b.bytesReceived, b.bytesSent, a.bytesReceived]).toEqual([pages.length, pages.length, 40 * 200, 40 * 200]);
    expect(lost).toEqual({ a: 2, b: 2 });
  });

  it('stops reading its local socket while more than maxUnackedBytes are unacknowledged', async () => {
    const { srcCriu, srcLocal, dstCriu, a, b, link } = await stream();
    const pages = randomBytes(8 << 20);
    const atDst = collect(dstCriu);
    let linking: Promise<unknown> | null = null;
    let overBound = 0;
    const violations: string[] = [];
    // Runs after the ResumableEnd's own listener, so it sees the state that listener left. Records rather than
    // throws: a throw in a socket listener would not fail the test.
    srcLocal.on('data', (chunk: Buffer) => {
      if (a.bytesRetained > (1 << 20) + chunk.length) violations.push(`retained ${a.bytesRetained}`);
      if (a.bytesRetained > 1 << 20) {
        overBound++;
        if (!srcLocal.isPaused()) violations.push(`still reading with ${a.bytesRetained} retained`);
        linking ??= link();
      }
    });
    const remoteEnd = once(b, 'remote-end');
    srcCriu.write(pages);
    srcCriu.end();
    await atDst.until(pages.length);
    await linking;
    expect(violations).toEqual([]);
    expect(overBound).toBeGreaterThan(0);
    expect(atDst.bytes().equals(pages)).toBe(true);
    // END is acknowledged with the total: nothing is retained any more.
    await remoteEnd;
    await eventually(() => a.bytesRetained === 0);
  });

  it('refuses a peer that resumes at an offset it cannot serve, and says so once with an error', async () => {
    const { srcCriu, dstCriu, a, b, link } = await stream();
    const atDst = collect(dstCriu);
    const data = randomBytes(2 << 20);
    await link();
    srcCriu.write(data);
    await atDst.until(data.length);
    await eventually(() => a.bytesRetained < a.bytesSent);

    // A destination that lost its state says HELLO at 0: those bytes are released at the source.
    const [, freshLocal] = await pair();
    const fresh = end(freshLocal);
    const errors: unknown[] = [];
    a.on('error', (e) => errors.push(e));
    const [la, lb] = await pair();
    const refused = a.attach(la);
    void fresh.attach(lb).catch(() => undefined);
    await expect(refused).rejects.toMatchObject({ code: 'ERR_PAGES_PROTOCOL' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(FerryError);
    expect(a.linked).toBe(false);
    await expect(a.attach((await pair())[0])).rejects.toBeInstanceOf(FerryError);

    // A source that lost its state is asked for bytes it never read.
    const [, freshSrc] = await pair();
    const source = end(freshSrc);
    const [lc, ld] = await pair();
    const beyond = source.attach(lc);
    void b.attach(ld).catch(() => undefined);
    await expect(beyond).rejects.toMatchObject({ code: 'ERR_PAGES_PROTOCOL' });
  });

  it('reports the remote end once, also when the END was lost with its link or sent again, and never ends local', async () => {
    const { srcCriu, srcLocal, dstCriu, dstLocal, a, b, link } = await stream();
    let remoteEnds = 0;
    b.on('remote-end', () => remoteEnds++);
    const atDst = collect(dstCriu);
    const data = randomBytes(300 << 10);
    let [la] = await link();
    srcCriu.write(data);
    await eventually(() => a.bytesSent === data.length);
    // The END stays in the corked link and dies with it.
    la.cork();
    const ended = once(srcLocal, 'end');
    srcCriu.end();
    await ended;
    la.destroy();
    await once(b, 'link-lost');
    expect(remoteEnds).toBe(0);

    const remoteEnd = once(b, 'remote-end');
    [la] = await link();
    await remoteEnd;
    expect(atDst.bytes().equals(data)).toBe(true);

    // A link after the END arrived: the END comes again (HELLO 17 bytes + END 13 bytes) and is not reported again.
    const [lc, ld] = await pair();
    const onWire = collect(ld);
    await Promise.all([a.attach(lc), b.attach(ld)]);
    await onWire.until(30);
    await new Promise((r) => setImmediate(r));
    expect(remoteEnds).toBe(1);
    expect(b.linked).toBe(true);

    // The destination's local is still open both ways: a reply still reaches the source.
    expect(dstLocal.writableEnded || dstLocal.destroyed).toBe(false);
    const atSrc = collect(srcCriu);
    dstCriu.write('reply');
    await atSrc.until(5);
    expect(atSrc.bytes().toString()).toBe('reply');
    expect(srcLocal.writableEnded).toBe(false);
  });

  it('abort() makes the peer report remote-abort, not a lost link', async () => {
    const { a, b, link } = await stream();
    const [, lb] = await link();
    const events: string[] = [];
    b.on('link-lost', () => events.push('link-lost'));
    b.on('remote-abort', () => events.push('remote-abort'));
    a.abort();
    const closed = once(lb, 'close');
    await once(b, 'remote-abort');
    // Whatever the dropped link says after the ABORT must go unheard.
    await closed;
    expect(events).toEqual(['remote-abort']);
    expect(a.linked || b.linked).toBe(false);
  });

  it('emits link-lost when the link dies, not when attach replaces it, and fails an attach whose link dies first', async () => {
    const { srcCriu, dstCriu, a, b, link } = await stream();
    const lost = { a: 0, b: 0 };
    a.on('link-lost', () => lost.a++);
    b.on('link-lost', () => lost.b++);
    await link();
    await link();
    const atSrc = collect(srcCriu);
    dstCriu.write('ping');
    await atSrc.until(4);
    expect(lost).toEqual({ a: 0, b: 0 });

    a.detach();
    await once(b, 'link-lost');
    expect(lost).toEqual({ a: 0, b: 1 });

    const [la, lb] = await pair();
    const attaching = a.attach(la);
    lb.destroy();
    await expect(attaching).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
    expect(lost).toEqual({ a: 1, b: 1 });
  });
});
