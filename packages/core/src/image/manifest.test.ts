import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeManifest, sha256File, verifyManifest, type ImageManifest } from './manifest';
import { writeSyntheticImageDir } from './synthetic-images';

let root: string;
let dir: string;
beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
  dir = join(root, '2');
  await writeSyntheticImageDir(join(root, '1'), { tasks: [{ pid: 1, ranges: [{ nrPages: 4 }] }], preDump: true });
  await writeSyntheticImageDir(dir, { tasks: [{ pid: 1, ranges: [{ nrPages: 3 }] }], parent: '../1' });
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'note'), 'hello');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('computeManifest', () => {
  it('lists every file with size and sha256, symlinks with their target, sorted by path', async () => {
    const manifest = await computeManifest(dir);
    expect(manifest.entries.map((e) => e.path)).toEqual([
      'inventory.img',
      'pagemap-1.img',
      'pages-1.img',
      'parent',
      'pstree.img',
      'sub/note',
    ]);
    expect(manifest.entries.find((e) => e.path === 'parent')).toEqual({ path: 'parent', type: 'symlink', target: '../1' });
    expect(manifest.entries.find((e) => e.path === 'sub/note')).toEqual({ path: 'sub/note', type: 'file', size: 5, sha256: sha('hello') });
    expect(manifest.entries.find((e) => e.path === 'pages-1.img')).toMatchObject({ size: 3 * 4096, sha256: sha(Buffer.alloc(3 * 4096, 1)) });
    expect(manifest).toMatchObject({ version: 1, algorithm: 'sha256', fileCount: 5 });
    expect(manifest.totalBytes).toBe(manifest.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0));
  });

  it('is deterministic and JSON-serialisable', async () => {
    const a = await computeManifest(dir, { concurrency: 1 });
    const b = await computeManifest(dir, { concurrency: 8 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
  });

  it('leaves out excluded paths', async () => {
    const manifest = await computeManifest(dir, { exclude: (p) => p.startsWith('sub/') });
    expect(manifest.entries.map((e) => e.path)).not.toContain('sub/note');
  });

  it('fails with ERR_IMAGE_NOT_FOUND for a missing directory', async () => {
    await expect(computeManifest(join(root, 'nope'))).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  });
});

describe('verifyManifest', () => {
  let manifest: ImageManifest;
  beforeEach(async () => {
    manifest = await computeManifest(dir);
  });

  it('finds nothing wrong with an untouched copy', async () => {
    expect(await verifyManifest(dir, JSON.parse(JSON.stringify(manifest)))).toEqual([]);
  });

  it('finds a byte changed in place (same size)', async () => {
    const fd = openSync(join(dir, 'pages-1.img'), 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, 5000);
    closeSync(fd);
    const mismatches = await verifyManifest(dir, manifest);
    expect(mismatches).toEqual([{ path: 'pages-1.img', kind: 'hash', expected: sha(Buffer.alloc(3 * 4096, 1)), actual: expect.any(String) }]);
  });

  it('finds missing, extra, resized, retargeted and retyped entries', async () => {
    unlinkSync(join(dir, 'pstree.img'));
    writeFileSync(join(dir, 'stats-dump'), 'new');
    appendFileSync(join(dir, 'sub', 'note'), '!');
    unlinkSync(join(dir, 'parent'));
    symlinkSync('../0', join(dir, 'parent'));
    unlinkSync(join(dir, 'inventory.img'));
    symlinkSync('elsewhere', join(dir, 'inventory.img'));
    expect(await verifyManifest(dir, manifest)).toEqual([
      { path: 'inventory.img', kind: 'type', expected: 'file', actual: 'symlink' },
      { path: 'parent', kind: 'target', expected: '../1', actual: '../0' },
      { path: 'pstree.img', kind: 'missing' },
      { path: 'stats-dump', kind: 'extra' },
      { path: 'sub/note', kind: 'size', expected: 5, actual: 6 },
    ]);
  });

  it('applies exclude to both sides', async () => {
    writeFileSync(join(dir, 'dump.log'), 'grows after the manifest');
    expect(await verifyManifest(dir, manifest, { exclude: (p) => p.endsWith('.log') })).toEqual([]);
  });

  it('rejects a manifest it does not understand', async () => {
    await expect(verifyManifest(dir, { ...manifest, version: 2 } as never)).rejects.toMatchObject({ code: 'ERR_IMAGE_CORRUPT' });
  });
});

describe('sha256File', () => {
  it('hashes a file larger than one read chunk', async () => {
    const data = Buffer.alloc((1 << 20) * 2 + 123, 7);
    writeFileSync(join(root, 'big'), data);
    expect(await sha256File(join(root, 'big'))).toBe(sha(data));
  });

  it('stops with ERR_ABORTED when cancelled', async () => {
    writeFileSync(join(root, 'big'), Buffer.alloc(1 << 20));
    const controller = new AbortController();
    controller.abort();
    await expect(sha256File(join(root, 'big'), controller.signal)).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
