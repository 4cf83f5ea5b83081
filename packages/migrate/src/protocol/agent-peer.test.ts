import { PassThrough, Writable, type Readable } from 'node:stream';
import { FerryError } from '@ferry/core';
import { AgentPeer } from './agent-peer';

function pair(): [AgentPeer, AgentPeer, () => void] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const client = new AgentPeer(bToA, aToB, 'agent');
  const server = new AgentPeer(aToB, bToA, 'source');
  return [client, server, () => (aToB.destroy(), bToA.destroy())];
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('requests, uploads and errors with codes and hints', async () => {
  const [client, server, cut] = pair();
  server.handle('echo', async (params) => ({ got: params }));
  server.handle('upload', async (_params, stream) => ({ bytes: (await collect(stream!)).length }));
  server.handle('fail', async () => {
    throw new FerryError('ERR_CRIU_RESTORE_FAILED', 'restore broke', { hint: 'read the log' });
  });
  await expect(client.request('echo', { a: 1 })).resolves.toEqual({ got: { a: 1 } });
  const big = Buffer.alloc(5 << 20, 3);
  const [up, echoed] = await Promise.all([
    client.request('upload', {}, async (sink) => {
      sink.write(big.subarray(0, 1000));
      sink.end(big.subarray(1000));
    }),
    client.request('echo', 'after'),
  ]);
  expect(up).toEqual({ bytes: big.length });
  expect(echoed).toEqual({ got: 'after' });
  await expect(client.request('fail', {})).rejects.toMatchObject({ code: 'ERR_CRIU_RESTORE_FAILED', hint: 'read the log', message: 'agent: restore broke' });
  await expect(client.request('nope', {})).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
  cut();
});

test('a dropped connection rejects what is pending with ERR_TRANSPORT_CLOSED', async () => {
  const [client, server, cut] = pair();
  server.handle('slow', () => new Promise(() => undefined));
  const pending = client.request('slow', {});
  setTimeout(cut, 20);
  await expect(pending).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  await expect(client.request('slow', {})).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
});

test('an upload blocked on a full channel fails when the connection drops (it must not hang)', async () => {
  const aToB = new PassThrough({ highWaterMark: 1024 });
  const bToA = new PassThrough();
  const client = new AgentPeer(bToA, aToB, 'agent');
  // Nobody reads aToB: the upload fills the channel and waits for 'drain', which never comes.
  const upload = client.request('upload', {}, async (sink) => {
    sink.end(Buffer.alloc(4 << 20));
  });
  setTimeout(() => bToA.destroy(), 50);
  await expect(upload).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
});

describe('uploads into a slow sink keep memory bounded (backpressure through the frames)', () => {
  const MiB = 1 << 20;
  const TOTAL = 96 * MiB;
  /** What may be in flight at once: the wire, the decoder's input and output, the stream's buffer. */
  const BOUND = 24 * MiB;

  /** Sends TOTAL bytes into a handler that takes each chunk slowly; returns the most ever sent but not yet taken. */
  async function peakInFlight(consume: (stream: Readable, took: (n: number) => void) => Promise<void>): Promise<number> {
    const aToB = new PassThrough();
    const bToA = new PassThrough();
    const client = new AgentPeer(bToA, aToB, 'agent');
    const server = new AgentPeer(aToB, bToA, 'source');
    let sent = 0;
    let taken = 0;
    let peak = 0;
    aToB.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      peak = Math.max(peak, sent - taken);
    });
    server.handle('upload', async (_params, stream) => {
      await consume(stream!, (n) => (taken += n));
      return { taken };
    });
    const piece = Buffer.alloc(MiB, 7);
    const result = await client.request<{ taken: number }>('upload', {}, async (sink) => {
      for (let i = 0; i < TOTAL / MiB; i++) if (!sink.write(piece)) await new Promise((r) => sink.once('drain', r));
      sink.end();
    });
    expect(result.taken).toBe(TOTAL);
    aToB.destroy();
    bToA.destroy();
    return peak;
  }

  const slowly = () => new Promise((resolve) => setTimeout(resolve, 2));

  test('a consumer reading with for-await (pre-copy rounds)', async () => {
    const peak = await peakInFlight(async (stream, took) => {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        await slowly();
        took(chunk.length);
      }
    });
    expect(peak).toBeLessThan(BOUND);
  });

  test('a consumer piped into a slow writable (uploads into a slow disk)', async () => {
    const peak = await peakInFlight(async (stream, took) => {
      const disk = new Writable({
        highWaterMark: 64 << 10,
        write: (chunk: Buffer, _enc, done) => void slowly().then(() => (took(chunk.length), done())),
      });
      await new Promise<void>((resolve, reject) => stream.pipe(disk).on('finish', resolve).on('error', reject));
    });
    expect(peak).toBeLessThan(BOUND);
  });
});

test("an upload chunk's write callback waits until the output took every piece of it (its memory may be reused then)", async () => {
  // An output that holds each write and calls back only when told, like an SSH channel whose window is full.
  const held: { bytes: Buffer; done: (err?: Error) => void }[] = [];
  const output = new Writable({
    highWaterMark: 64 << 20,
    write(chunk: Buffer, _enc, done) {
      held.push({ bytes: chunk, done });
    },
  });
  const client = new AgentPeer(new PassThrough(), output, 'agent');
  let piecesWritten = 0;
  let piecesWhenTaken: number | undefined;
  const upload = client.request('upload', {}, async (sink) => {
    await new Promise<void>((resolve) => sink.write(Buffer.alloc(3 << 20, 7), () => ((piecesWhenTaken = piecesWritten), resolve())));
  });
  upload.catch(() => undefined);
  // The request line, then a header and a 1 MiB piece for each third of the chunk: written one at a time.
  for (let i = 0; i < 40 && piecesWhenTaken === undefined; i++) {
    await new Promise((r) => setTimeout(r, 2));
    const next = held.shift();
    if (next?.bytes.length === 1 << 20) piecesWritten++;
    next?.done();
  }
  expect(piecesWhenTaken).toBe(3);
});

test('a chunk the output failed is reported as failed, not as taken', async () => {
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (chunk.length > 100) done(new Error('the channel broke'));
      else done();
    },
  });
  output.on('error', () => undefined);
  const client = new AgentPeer(new PassThrough(), output, 'agent');
  let result: unknown = 'pending';
  const upload = client.request('upload', {}, async (sink) => {
    sink.on('error', () => undefined);
    await new Promise<void>((resolve) => sink.write(Buffer.alloc(4096, 1), (err) => ((result = err ?? 'taken'), resolve())));
  });
  await expect(upload).rejects.toThrow('the channel broke');
  expect(result).toBeInstanceOf(Error);
});
