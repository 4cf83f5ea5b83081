import { PassThrough, type Readable } from 'node:stream';
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
