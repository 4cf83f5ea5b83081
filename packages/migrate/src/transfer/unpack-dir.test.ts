import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { packDir } from './pack-dir';
import { markerHeader, metaHeader, TRANSFER_FORMAT, type TarHeader } from './stream-format';
import { unpackDir } from './unpack-dir';

let work: string;
let dst: string;
let outside: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ferry-unpack-'));
  dst = join(work, 'dst');
  outside = join(work, 'somewhere'); // stands for /tmp/somewhere: must stay empty
  mkdirSync(outside);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const MiB = 1 << 20;

interface Item {
  header: TarHeader;
  body?: string | Buffer;
}

/** A transfer stream built by hand: ferry's begin and end markers around `items`, unless told otherwise. */
async function archive(items: Item[], { begin = true, end = { files: 0, bytes: 0 } as { files: number; bytes: number } | null } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  const add = (header: TarHeader, body?: string | Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body === undefined) pack.entry(header, done);
      else pack.entry(header, body, done);
    });
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  if (begin) await add(markerHeader('begin', json({ format: TRANSFER_FORMAT }).length), json({ format: TRANSFER_FORMAT }));
  for (const item of items) await add(item.header, item.body);
  if (end) await add(markerHeader('end', json(end).length), json(end));
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

function unpackBuffer(bytes: Buffer, options = {}) {
  return unpackDir(Readable.from([bytes]), dst, options);
}

function listTree(dir: string): string[] {
  return existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).sort() : [];
}

const ABSOLUTE = join(tmpdir(), `ferry-abs-evil-${process.pid}`);

test.each([
  ['a parent directory', '../evil'],
  ['a deeper escape', 'a/../../evil'],
  ['an absolute path', ABSOLUTE],
  ['a dot component', './x'],
])('%s (%s) is refused and nothing is written', async (_what, name) => {
  for (const type of ['file', 'directory', 'symlink'] as const) {
    const header: TarHeader = { name, type, ...(type === 'symlink' ? { linkname: '/etc/passwd' } : {}) };
    const bytes = await archive([{ header, ...(type === 'file' ? { body: 'evil' } : {}) }], { end: { files: 1, bytes: type === 'file' ? 4 : 0 } });
    await expect(unpackBuffer(bytes)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
    expect(existsSync(join(work, 'evil'))).toBe(false);
    expect(existsSync(ABSOLUTE)).toBe(false);
    expect(listTree(dst)).toEqual([]);
  }
});

test('a file under a symlink from the same archive is refused: nothing lands where the link points', async () => {
  const bytes = await archive(
    [
      { header: { name: 'a', type: 'symlink', linkname: outside } },
      { header: { name: 'a/b', type: 'file' }, body: 'through the link' },
    ],
    { end: { files: 2, bytes: 16 } },
  );
  const err = await unpackBuffer(bytes).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringMatching(/parent a is a symlink/) });
  expect(listTree(outside)).toEqual([]);
});

test('a directory replaced by a symlink in the same archive cannot be written through afterwards', async () => {
  const bytes = await archive(
    [
      { header: { name: 'a', type: 'directory', mode: 0o755 } },
      { header: { name: 'a/ok', type: 'file' }, body: 'ok' },
      { header: { name: 'a', type: 'symlink', linkname: outside } },
      { header: { name: 'a/b', type: 'file' }, body: 'through the link' },
    ],
    { end: { files: 4, bytes: 18 } },
  );
  await expect(unpackBuffer(bytes)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringMatching(/parent a is a symlink/) });
  expect(listTree(outside)).toEqual([]);
});

test('a symlink already in the destination is not written through either, nor used by deletions', async () => {
  mkdirSync(dst);
  symlinkSync(outside, join(dst, 'a'));
  writeFileSync(join(outside, 'precious'), 'keep me');
  const write = await archive([{ header: { name: 'a/b', type: 'file' }, body: 'x' }], { end: { files: 1, bytes: 1 } });
  await expect(unpackBuffer(write)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  const dirThrough = await archive([{ header: { name: 'a/d', type: 'directory' } }], { end: { files: 1, bytes: 0 } });
  await expect(unpackBuffer(dirThrough)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  const del = Buffer.from(JSON.stringify(['a/precious']));
  const deleting = await archive([{ header: markerHeader('deleted', del.length), body: del }]);
  await expect(unpackBuffer(deleting)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  expect(listTree(outside)).toEqual(['precious']);
  expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep me');
});

test('a symlink entry replaces a symlink in the destination instead of following it', async () => {
  mkdirSync(dst);
  writeFileSync(join(outside, 'target'), 'untouched');
  symlinkSync(join(outside, 'target'), join(dst, 'f'));
  const bytes = await archive([{ header: { name: 'f', type: 'file', mode: 0o644 }, body: 'mine' }], { end: { files: 1, bytes: 4 } });
  await unpackBuffer(bytes);
  expect(readFileSync(join(dst, 'f'), 'utf8')).toBe('mine');
  expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
});

test('hard links and streams that are not ferry transfer streams are refused', async () => {
  const link = await archive([{ header: { name: 'passwd', type: 'link', linkname: '/etc/passwd' } }], { end: { files: 1, bytes: 0 } });
  await expect(unpackBuffer(link)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  const plain = await archive([{ header: { name: 'x', type: 'file' }, body: 'x' }], { begin: false, end: null });
  await expect(unpackBuffer(plain)).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
  await expect(unpackBuffer(Buffer.alloc(4096, 'x'))).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
});

async function packed(files: Record<string, Buffer>): Promise<Buffer> {
  const src = join(work, 'src');
  mkdirSync(src, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);
  const out = new PassThrough({ highWaterMark: MiB });
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await packDir(src, out);
  return Buffer.concat(chunks);
}

test.each([
  ['a large file (streamed to disk)', 3 * MiB, 2 * MiB],
  ['a small file (read whole first)', 300_000, 200_000],
])('cut in the middle of %s: rejects, and leaves no partial file', async (_what, size, cut) => {
  const bytes = await packed({ 'a.img': randomBytes(size) });
  const err = await unpackBuffer(bytes.subarray(0, cut)).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_TRANSPORT_CLOSED', message: expect.stringMatching(/Unexpected end of data/) });
  expect(listTree(dst)).toEqual([]);
});

test('a stream cut between entries, before its end marker, rejects', async () => {
  const bytes = await packed({ 'one': Buffer.from('1'), 'two': Buffer.from('2') });
  // The end marker starts with a pax header block named PaxHeader, before the block that holds its records.
  const records = bytes.indexOf(Buffer.from('FERRY.kind=end'));
  let start = records - (records % 512) - 512;
  while (bytes.subarray(start, start + 9).toString() !== 'PaxHeader') start -= 512;
  const err = await unpackBuffer(bytes.subarray(0, start)).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_TRANSPORT_CLOSED', message: expect.stringMatching(/end marker/) });
});

test('a failing source stream rejects with ERR_TRANSPORT_CLOSED and the stream is left to its owner', async () => {
  const bytes = await packed({ 'a.img': randomBytes(2 * MiB) });
  const channel = new PassThrough();
  const unpacking = unpackDir(channel, dst);
  channel.write(bytes.subarray(0, MiB));
  setTimeout(() => channel.destroy(new Error('connection reset')), 10);
  await expect(unpacking).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED', message: expect.stringMatching(/connection reset/) });
  expect(listTree(dst)).toEqual([]);
});

test('aborting unpackDir rejects with ERR_ABORTED, stops reading, and leaves no temporary file', async () => {
  const bytes = await packed({ 'a.img': randomBytes(4 * MiB) });
  const channel = new PassThrough({ highWaterMark: MiB });
  const controller = new AbortController();
  const unpacking = unpackDir(channel, dst, { signal: controller.signal, onProgress: (b) => b >= MiB && controller.abort() });
  channel.write(bytes.subarray(0, 3 * MiB));
  await expect(unpacking).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  expect(channel.destroyed).toBe(false);
  expect(channel.isPaused()).toBe(true);
  expect(listTree(dst)).toEqual([]);
});

test('an already aborted signal fails fast', async () => {
  const controller = new AbortController();
  controller.abort();
  await expect(unpackDir(new PassThrough(), dst, { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  await expect(packDir(work, new PassThrough(), { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
});

test('a count mismatch in the end marker is an error', async () => {
  const bytes = await archive([{ header: { name: 'x', type: 'file' }, body: 'xyz' }], { end: { files: 1, bytes: 4 } });
  await expect(unpackBuffer(bytes)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED', message: expect.stringMatching(/inconsistent/) });
});

test('deletions remove files and whole directories before anything is written', async () => {
  mkdirSync(join(dst, 'old/deep'), { recursive: true });
  writeFileSync(join(dst, 'old/deep/f'), 'f');
  writeFileSync(join(dst, 'stale'), 's');
  writeFileSync(join(dst, 'keep'), 'k');
  const del = Buffer.from(JSON.stringify(['old', 'stale', 'never/existed']));
  const bytes = await archive([{ header: markerHeader('deleted', del.length), body: del }]);
  await expect(unpackBuffer(bytes)).resolves.toEqual({ files: 0, bytes: 0 });
  expect(listTree(dst)).toEqual(['keep']);
});

test("the root takes neither the archive's mode nor its owner (an upload cannot open the bundle to other users)", async () => {
  mkdirSync(dst, { mode: 0o700 });
  const root: TarHeader = { ...metaHeader('.', { mode: 0o40777, uid: 4242, gid: 4242, mtimeNs: 1_600_000_000_000_000_000n }), type: 'directory' };
  const sub: TarHeader = { ...metaHeader('sub', { mode: 0o40751, uid: 4242, gid: 4242, mtimeNs: 1_600_000_000_000_000_000n }), type: 'directory' };
  await unpackBuffer(await archive([{ header: root }, { header: sub }], { end: { files: 2, bytes: 0 } }));
  const st = statSync(dst);
  expect(st.mode & 0o7777).toBe(0o700);
  expect(st.uid).toBe(process.getuid!());
  expect(st.mtimeMs).toBe(1_600_000_000_000); // times still come from the archive
  // Below the root, the archive's metadata is the container's: kept.
  expect(statSync(join(dst, 'sub')).mode & 0o7777).toBe(0o751);
  if (process.getuid!() === 0) expect(statSync(join(dst, 'sub')).uid).toBe(4242);
});
