import { appendFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageDirBytes, readImageSet } from './image-set';
import { PE_FLAGS } from './image-schema';
import { dumpStatsEntry, writeSyntheticImageDir } from './synthetic-images';

const { PRESENT, PARENT, LAZY } = PE_FLAGS;
const PAGE = 4096;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-image-set-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function twoTaskDump(dir = join(root, '2')): Promise<string> {
  await writeSyntheticImageDir(join(root, '1'), { tasks: [{ pid: 1, ranges: [{ nrPages: 4 }] }], preDump: true });
  await writeSyntheticImageDir(dir, {
    tasks: [
      {
        pid: 1,
        threads: [1, 2],
        ranges: [{ nrPages: 3 }, { nrPages: 2, flags: PARENT }, { nrPages: 4, flags: PRESENT | LAZY }, { nrPages: 5, flags: LAZY }],
      },
      { pid: 5, ppid: 1, ranges: [] },
      { pid: 6, ppid: 1 }, // no pagemap, like a zombie
    ],
    shmem: [{ id: 77, ranges: [{ nrPages: 1 }] }],
    dumpStats: dumpStatsEntry({ pages_skipped_parent: 2, irmap_resolve: 1500 }),
    parent: '../1',
  });
  return dir;
}

describe('readImageSet', () => {
  it('models tasks, their memory, totals, files, parent and stats', async () => {
    const dir = await twoTaskDump();
    const set = await readImageSet(dir);
    expect(set.kind).toBe('dump');
    expect(set.dir).toBe(dir);
    expect(set.tasks.map((t) => [t.pid, t.ppid, t.threads])).toEqual([
      [1, 0, [1, 2]],
      [5, 1, [5]],
      [6, 1, [6]],
    ]);
    expect(set.tasks[0]!.memory).toEqual({
      owner: { kind: 'task', pid: 1 },
      pagemapFile: 'pagemap-1.img',
      pagesId: 1,
      pagesFile: 'pages-1.img',
      presentPages: 7,
      parentPages: 2,
      lazyPages: 5,
      pagesBytes: 7 * PAGE,
    });
    expect(set.tasks[1]!.memory).toMatchObject({ presentPages: 0, pagesBytes: 0 });
    expect(set.tasks[2]!.memory).toBeUndefined();
    expect(set.memory.map((m) => m.owner)).toEqual([
      { kind: 'task', pid: 1 },
      { kind: 'task', pid: 5 },
      { kind: 'shmem', id: '77' },
    ]);
    expect(set.totals).toEqual({
      tasks: 3,
      threads: 4,
      presentPages: 8,
      parentPages: 2,
      lazyPages: 5,
      pagesBytes: 8 * PAGE,
      files: set.files.filter((f) => f.type === 'file').length,
      bytes: set.files.reduce((n, f) => n + f.bytes, 0),
    });
    expect(set.parent).toEqual({ target: '../1', path: join(root, '1'), exists: true });
    expect(set.stats.dump).toMatchObject({ frozenMs: 48.818, irmapResolveMs: 1.5, pagesWritten: 8215, pagesSkippedParent: 2 });
    expect(set.stats.restore).toBeUndefined();
    expect(set.files.find((f) => f.name === 'parent')).toEqual({ name: 'parent', type: 'symlink', bytes: 0, target: '../1' });
    expect(set.files.find((f) => f.name === 'pages-1.img')).toMatchObject({ imageType: 'PAGES', bytes: 7 * PAGE });
    expect(set.files.find((f) => f.name === 'stats-dump')).toMatchObject({ imageType: 'STATS' });
    expect(set.files.map((f) => f.name)).toEqual([...set.files.map((f) => f.name)].sort());
    expect(JSON.parse(JSON.stringify(set))).toEqual(set);
  });

  it('reports a dangling parent link without failing', async () => {
    const dir = join(root, 'd');
    await writeSyntheticImageDir(dir, { tasks: [{ pid: 1, ranges: [{ nrPages: 1 }] }], parent: '../gone' });
    expect((await readImageSet(dir)).parent).toEqual({ target: '../gone', path: join(root, 'gone'), exists: false });
  });

  it('reads a pre-dump directory (no pstree.img)', async () => {
    const dir = join(root, 'pre');
    await writeSyntheticImageDir(dir, { tasks: [{ pid: 1, ranges: [{ nrPages: 2 }] }], preDump: true });
    const set = await readImageSet(dir);
    expect(set.kind).toBe('pre-dump');
    expect(set.tasks).toEqual([]);
    expect(set.memory).toHaveLength(1);
    expect(set.totals.presentPages).toBe(2);
  });

  it('finds stats in the work directory', async () => {
    const dir = join(root, 'img');
    const work = join(root, 'work');
    await writeSyntheticImageDir(dir, { tasks: [{ pid: 1 }] });
    await writeSyntheticImageDir(work, {
      tasks: [],
      dumpStats: dumpStatsEntry(),
      restoreStats: { pages_compared: 0, pages_skipped_cow: 0, forking_time: 12, restore_time: 34_000, pages_restored: 9 },
    });
    const set = await readImageSet(dir, { workDir: work });
    expect(set.stats.dump?.pagesWritten).toBe(8215);
    expect(set.stats.restore).toEqual({ pagesCompared: 0, pagesSkippedCow: 0, forkingMs: 0.012, restoreMs: 34, pagesRestored: 9 });
  });

  it('honours a different page size', async () => {
    const dir = join(root, 'arm');
    await writeSyntheticImageDir(dir, { tasks: [{ pid: 1, ranges: [{ nrPages: 2 }] }], pageSize: 65536 });
    expect((await readImageSet(dir, { pageSize: 65536 })).totals.pagesBytes).toBe(2 * 65536);
    await expect(readImageSet(dir)).rejects.toMatchObject({ code: 'ERR_IMAGE_CORRUPT' });
  });

  it('rejects a pages file that does not match its pagemap', async () => {
    const dir = await twoTaskDump();
    truncateSync(join(dir, 'pages-1.img'), 6 * PAGE);
    await expect(readImageSet(dir)).rejects.toMatchObject({
      code: 'ERR_IMAGE_CORRUPT',
      message: expect.stringMatching(/pages-1\.img: is 24576 bytes, but pagemap-1\.img says it holds 7 pages/),
      details: expect.objectContaining({ expectedBytes: 7 * PAGE }),
    });
  });

  it('rejects a missing pages file', async () => {
    const dir = await twoTaskDump();
    unlinkSync(join(dir, 'pages-1.img'));
    await expect(readImageSet(dir)).rejects.toMatchObject({ code: 'ERR_IMAGE_CORRUPT', message: expect.stringContaining('missing') });
  });

  it('rejects a corrupt pagemap with the file and offset', async () => {
    const dir = await twoTaskDump();
    appendFileSync(join(dir, 'pagemap-1.img'), Buffer.from([9, 9]));
    await expect(readImageSet(dir)).rejects.toMatchObject({
      code: 'ERR_IMAGE_CORRUPT',
      message: expect.stringMatching(/pagemap-1\.img: truncated entry length at offset \d+/),
    });
  });

  it('says ERR_IMAGE_NOT_FOUND for a missing directory, a file, or a directory without inventory.img', async () => {
    await expect(readImageSet(join(root, 'nope'))).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
    writeFileSync(join(root, 'file'), 'x');
    await expect(readImageSet(join(root, 'file'))).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND', message: expect.stringContaining('not a directory') });
    mkdirSync(join(root, 'empty'));
    await expect(readImageSet(join(root, 'empty'))).rejects.toMatchObject({
      code: 'ERR_IMAGE_NOT_FOUND',
      message: expect.stringContaining('no inventory.img'),
      hint: expect.any(String),
    });
  });
});

describe('imageDirBytes', () => {
  it('sums regular files without following the parent link', async () => {
    const dir = await twoTaskDump();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'extra'), Buffer.alloc(10));
    const set = await readImageSet(dir);
    expect(await imageDirBytes(dir)).toBe(set.totals.bytes);
    expect(set.totals.bytes).toBeGreaterThan(8 * PAGE);
    expect(set.totals.bytes).toBeLessThan(8 * PAGE + 4 * PAGE); // the parent's 4 pages are not counted
  });
});
