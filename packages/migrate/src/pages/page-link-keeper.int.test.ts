/**
 * The page-link keeper as a real process (ferry's CLI, `page-link-keeper`) holding a real page socket pair (a TCP pair
 * in a private netns, as CRIU's lazy-pages daemon gets): the stream survives its links being cut, the daemon's side
 * is never ended by a failure, and it gives up (exit 3) when no link comes back within its grace. Root.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPageSocketPair } from '@ferry/core';
import { KEEPER_GAVE_UP, KEEPER_LOG, spawnPageLinkKeeper, type SpawnedKeeper } from './page-link-keeper';
import { ResumableEnd } from './resumable-stream';

jest.setTimeout(60_000);

const FERRY = [process.execPath, join(__dirname, '../../../cli/bin/ferry.js')];
let dir: string;
let server: Server;
const closers: (() => void)[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-keeper-'));
  // The source's CRIU stand-in: a pair of unix sockets, one end held by the source's ResumableEnd.
  server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(join(dir, 'criu.sock'), r));
});
afterEach(() => {
  for (const c of closers.splice(0)) c();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function setUp(): Promise<{ keeper: SpawnedKeeper; daemon: Socket; criu: Socket; source: ResumableEnd; link: () => Promise<Socket> }> {
  const pair = await createPageSocketPair();
  const keeper = spawnPageLinkKeeper(dir, pair.ferryEnd, FERRY, { ...process.env, FERRY_PAGE_LINK_GRACE_MS: '1500' });
  closers.push(() => keeper.stop());
  await keeper.ready;
  // Kept open here as CRIU's lazy-pages daemon keeps its copy (its fd 4): the keeper's exit is then no end to it.
  closers.push(() => pair.ferryEnd.close());
  const daemon = new Socket({ fd: pair.criuEnd.release(), readable: true, writable: true, allowHalfOpen: true });
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const criu = createConnection({ path: join(dir, 'criu.sock'), allowHalfOpen: true });
  const sourceLocal = await accepted;
  const source = new ResumableEnd(sourceLocal);
  source.on('error', () => undefined);
  closers.push(() => {
    source.detach();
    for (const s of [daemon, criu, sourceLocal]) s.destroy();
  });
  const link = async () => {
    const s = createConnection({ path: keeper.socketPath });
    s.on('error', () => undefined);
    await source.attach(s);
    return s;
  };
  return { keeper, daemon, criu, source, link };
}

function reader(s: Socket): { size: () => number; bytes: () => Buffer; until: (n: number) => Promise<void> } {
  const chunks: Buffer[] = [];
  let size = 0;
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    size += c.length;
  });
  return {
    size: () => size,
    bytes: () => Buffer.concat(chunks),
    until: async (n) => {
      while (size < n) await new Promise((r) => setTimeout(r, 5));
    },
  };
}

test('requests and pages cross a keeper byte-exact while its links are cut and re-made', async () => {
  const { daemon, criu, link } = await setUp();
  const atSource = reader(criu);
  const atDaemon = reader(daemon);
  const pages = Buffer.alloc(6 << 20);
  for (let i = 0; i < pages.length; i += 4) pages.writeUInt32LE(i, i);
  let l = await link();
  daemon.write('request-1;');
  criu.write(pages.subarray(0, 2 << 20));
  await atDaemon.until(1 << 20);
  l.destroy(); // the SSH connection dies in the middle
  daemon.write('request-2;');
  criu.write(pages.subarray(2 << 20, 4 << 20));
  l = await link();
  await atDaemon.until(3 << 20);
  l.destroy();
  l = await link();
  criu.write(pages.subarray(4 << 20));
  daemon.write('request-3;');
  await atDaemon.until(pages.length);
  await atSource.until(30);
  expect(atDaemon.bytes().equals(pages)).toBe(true);
  expect(atSource.bytes().toString()).toBe('request-1;request-2;request-3;');
  expect(readFileSync(join(dir, KEEPER_LOG), 'utf8')).toMatch(/link 3 attached/);
});

test('no link back within the grace: the keeper gives up (exit 3) without ending the daemon\'s side', async () => {
  const { keeper, daemon, link } = await setUp();
  let daemonSawEnd = false;
  daemon.on('end', () => (daemonSawEnd = true));
  daemon.resume();
  const l = await link();
  l.destroy();
  await expect(keeper.exited).resolves.toBe(KEEPER_GAVE_UP);
  expect(readFileSync(join(dir, KEEPER_LOG), 'utf8')).toMatch(/giving up: no new link came within 1500 ms/);
  await new Promise((r) => setTimeout(r, 200));
  expect(daemonSawEnd).toBe(false); // CRIU would read an end as "every page served"
});

test("the daemon's side ends (it has every page): the source hears END and the keeper exits 0", async () => {
  const { keeper, daemon, source, link } = await setUp();
  const heard = new Promise((r) => source.once('remote-end', r));
  await link();
  daemon.end();
  await heard;
  await expect(keeper.exited).resolves.toBe(0);
});

test('the source abandons the stream: the keeper gives up at once', async () => {
  const { keeper, source, link } = await setUp();
  await link();
  source.abort();
  await expect(keeper.exited).resolves.toBe(KEEPER_GAVE_UP);
  expect(readFileSync(join(dir, KEEPER_LOG), 'utf8')).toMatch(/the source abandoned the stream/);
});

test("the source's side ends first (its CRIU died): the keeper gives up without passing the end to the daemon", async () => {
  const { keeper, daemon, criu, link } = await setUp();
  let daemonSawEnd = false;
  daemon.on('end', () => (daemonSawEnd = true));
  daemon.resume();
  await link();
  criu.end();
  await expect(keeper.exited).resolves.toBe(KEEPER_GAVE_UP);
  expect(readFileSync(join(dir, KEEPER_LOG), 'utf8')).toMatch(/the source's side ended before the lazy-pages daemon had every page/);
  await new Promise((r) => setTimeout(r, 200));
  expect(daemonSawEnd).toBe(false);
});
