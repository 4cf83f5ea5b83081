import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { isFerryError } from '../model/ferry-error';
import { detectCompression, memberVerdict, readArchive, writeArchive } from './archive-tar';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-archive-tar-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tools = { zstdPath: '/nonexistent/zstd' };

/** A tar built member by member, for archives ferry would never write. */
async function rawTar(entries: { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; linkname?: string; data?: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => pack.on('end', r));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) }, e.data ?? '', (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe('memberVerdict', () => {
  it.each([
    ['config.dump', 'file', 'file'],
    ['./spec.dump', 'file', 'file'],
    ['checkpoint/', 'directory', 'dir'],
    ['checkpoint/core-1.img', 'file', 'file'],
    ['volumes/data.tar', 'file', 'file'],
    ['ctr.log', 'file', 'skip'],
    ['artifacts/x', 'file', 'skip'],
    ['./', 'directory', 'skip'],
  ])('%s (%s) -> %s', (name, type, verdict) => expect(memberVerdict(name, type)).toBe(verdict));

  it.each([
    ['/etc/passwd', 'file'],
    ['checkpoint/../../x', 'file'],
    ['checkpoint/a/b', 'file'],
    ['checkpoint/parent', 'symlink'],
    ['config.dump', 'symlink'],
    ['checkpoint', 'file'],
    ['checkpoint/x', 'link'],
  ])('refuses %s (%s)', (name, type) => expect(typeof memberVerdict(name, type)).toBe('object'));
});

it('detects gzip and zstd by their magic numbers', () => {
  expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
  expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
  expect(detectCompression(Buffer.from('conf'))).toBe('none');
  expect(detectCompression(Buffer.alloc(0))).toBe('none');
});

it('writes an archive atomically (0600) and reads it back, plain and gzipped', async () => {
  const img = join(dir, 'core-1.img');
  writeFileSync(img, Buffer.alloc(100_000, 7));
  const file = join(dir, 'out.tar');
  const { bytes } = await writeArchive(file, [
    { name: 'config.dump', content: '{"name":"x"}' },
    { name: 'checkpoint/core-1.img', path: img },
    { name: 'checkpoint/inventory.img', content: 'inv' },
  ]);
  expect(bytes).toBe(statSync(file).size);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual([]);

  const dest = join(dir, 'plain');
  mkdirSync(dest);
  const read = await readArchive(file, dest, tools);
  expect(read.compression).toBe('none');
  expect(read.files.sort()).toEqual(['checkpoint/core-1.img', 'checkpoint/inventory.img', 'config.dump']);
  expect(readFileSync(join(dest, 'checkpoint', 'core-1.img')).equals(readFileSync(img))).toBe(true);
  expect(statSync(join(dest, 'checkpoint')).mode & 0o777).toBe(0o700);

  const gz = join(dir, 'out.tar.gz');
  writeFileSync(gz, gzipSync(readFileSync(file)));
  const dest2 = join(dir, 'gz');
  mkdirSync(dest2);
  expect((await readArchive(gz, dest2, tools)).compression).toBe('gzip');
  expect(readFileSync(join(dest2, 'config.dump'), 'utf8')).toBe('{"name":"x"}');
});

it('a failed write leaves no file', async () => {
  const file = join(dir, 'out.tar');
  await expect(writeArchive(file, [{ name: 'a', path: join(dir, 'missing') }])).rejects.toThrow(/writing the checkpoint archive/);
  expect(readdirSync(dir)).toEqual([]);
});

it.each([
  ['a symlink in checkpoint/', [{ name: 'checkpoint/', type: 'directory' as const }, { name: 'checkpoint/x', type: 'symlink' as const, linkname: '/etc' }]],
  ['a climbing name', [{ name: 'checkpoint/../../evil', data: 'x' }]],
  ['a member twice', [{ name: 'config.dump', data: '1' }, { name: 'config.dump', data: '2' }]],
])('refuses %s with ERR_PRECHECK_BAD_INPUT, writing nothing outside dest', async (_what, entries) => {
  const file = join(dir, 'bad.tar');
  writeFileSync(file, await rawTar(entries));
  const dest = join(dir, 'dest');
  mkdirSync(dest);
  const err = await readArchive(file, dest, tools).catch((e: unknown) => e);
  expect(isFerryError(err) && err.code).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(readdirSync(dir).sort()).toEqual(['bad.tar', 'dest']);
});

it('skips members it does not use and says so', async () => {
  const file = join(dir, 'podman.tar');
  writeFileSync(file, await rawTar([{ name: 'ctr.log', data: 'log' }, { name: 'artifacts/', type: 'directory' }, { name: 'spec.dump', data: '{}' }]));
  const dest = join(dir, 'dest');
  mkdirSync(dest);
  const read = await readArchive(file, dest, tools);
  expect(read.files).toEqual(['spec.dump']);
  expect(read.skipped).toEqual(['ctr.log', 'artifacts']);
});

it('a zstd archive without the zstd tool is a clear error', async () => {
  const file = join(dir, 'a.tar.zst');
  writeFileSync(file, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
  const dest = join(dir, 'dest');
  mkdirSync(dest);
  const err = await readArchive(file, dest, tools).catch((e: unknown) => e);
  expect(isFerryError(err) && err.code).toBe('ERR_RUNTIME_UNAVAILABLE');
});

it('garbage is ERR_IMAGE_CORRUPT, a missing file ERR_IMAGE_NOT_FOUND', async () => {
  const file = join(dir, 'junk');
  writeFileSync(file, 'x'.repeat(2000));
  const dest = join(dir, 'dest');
  mkdirSync(dest);
  expect(((await readArchive(file, dest, tools).catch((e: unknown) => e)) as { code: string }).code).toBe('ERR_IMAGE_CORRUPT');
  expect(((await readArchive(join(dir, 'nope'), dest, tools).catch((e: unknown) => e)) as { code: string }).code).toBe('ERR_IMAGE_NOT_FOUND');
});
