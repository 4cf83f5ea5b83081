import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeImage } from './image-file';
import { identifyImageHeader } from './image-magic';
import { readInventory, readPagemap, readPstree, readStats } from './image-records';
import { INVENTORY_IMAGE, PAGEMAP_IMAGE, PE_FLAGS, PSTREE_IMAGE, STATS_IMAGE } from './image-schema';

// Recorded from CRIU 4.2.1 (Debian sid build) on kernel 6.18: a dump of fixtures/workload.c with 8 MiB, then
// its restore. `--display-stats` printed "Restore time: 21704 us", "Pages restored: 2066".
const REAL = {
  inventory:
    '163131584e000000080210011a18080110011801200128013002380340044806500758086005200128013000580062006a2435666262336135652d636136342d343130652d623265652d343937666539633565626261',
  pagemap:
    '19435654254008560200000008010b0000000880a080021000200428010b000000088080a9021000200428050b0000000880a0ab021000200628010c000000088080d2e4011000200628040f00000008808080809be91f1000200628fb070f0000000880e0fe819be91f100020062880080e0000000880e0fe839be91f1000200628050e0000000880a0b9849be91f1000200428020e0000000880a084f8e7ff1f1000200628040e0000000880c085f8e7ff1f100020062801',
  statsDump: '4059105506330957260000000a24086b10b2fd0218cfc60220c3bb02289e4030003897404000480050085808600068007000',
  statsRestore: '40591055063309570f000000120d08001000180120c8a901289210',
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-image-records-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, data: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof data === 'string' ? Buffer.from(data, 'hex') : data);
  return path;
}

describe('real CRIU 4.2.1 images', () => {
  it('reads the inventory', async () => {
    expect(await readInventory(file('inventory.img', REAL.inventory))).toEqual({
      imgVersion: 2,
      fdinfoPerId: true,
      nsPerId: true,
      rootCgSet: 1,
      lsm: 'none',
      tcpClose: false,
      networkLock: 'iptables',
      dumpRunId: '5fbb3a5e-ca64-410e-b2ee-497fe9c5ebba',
    });
  });

  it('reads page counts from nr_pages (CRIU 4 leaves compat_nr_pages at 0)', async () => {
    const pagemap = await readPagemap(file('pagemap-1.img', REAL.pagemap));
    expect(pagemap.pagesId).toBe(1);
    expect(pagemap.ranges[0]).toEqual({ vaddr: 0x401000n, nrPages: 1, flags: PE_FLAGS.PRESENT });
    expect(pagemap.ranges.reduce((n, r) => n + r.nrPages, 0)).toBe(2066);
    // Anonymous private ranges are stored here and also marked as lazily restorable.
    expect(pagemap.ranges.some((r) => r.flags === (PE_FLAGS.PRESENT | PE_FLAGS.LAZY))).toBe(true);
  });

  it('converts dump stats from microseconds to milliseconds', async () => {
    expect(await readStats(file('stats-dump', REAL.statsDump))).toEqual({
      dump: {
        freezingMs: 0.107,
        frozenMs: 48.818,
        memdumpMs: 41.807,
        memwriteMs: 40.387,
        irmapResolveMs: 0,
        pagesScanned: 8222,
        pagesSkippedParent: 0,
        pagesWritten: 8215,
        pagesLazy: 0,
        pagePipes: 8,
        pagePipeBufs: 8,
        shpagesScanned: 0,
        shpagesSkippedParent: 0,
        shpagesWritten: 0,
      },
    });
  });

  it('reads restore stats', async () => {
    expect(await readStats(file('stats-restore', REAL.statsRestore))).toEqual({
      restore: { pagesCompared: 0, pagesSkippedCow: 0, forkingMs: 0.001, restoreMs: 21.704, pagesRestored: 2066 },
    });
  });

  it('identifies image types from their headers', () => {
    expect(identifyImageHeader(Buffer.from(REAL.inventory, 'hex').subarray(0, 8))?.name).toBe('INVENTORY');
    expect(identifyImageHeader(Buffer.from(REAL.pagemap, 'hex').subarray(0, 8))?.name).toBe('PAGEMAP');
    expect(identifyImageHeader(Buffer.from(REAL.statsDump, 'hex').subarray(0, 8))).toMatchObject({ name: 'STATS', set: 'service' });
    expect(identifyImageHeader(Buffer.from('1943565433441143', 'hex'))?.name).toBe('TIMENS');
    expect(identifyImageHeader(Buffer.alloc(8))).toBeUndefined(); // raw data, e.g. a pages file
    expect(identifyImageHeader(Buffer.from([1, 2]))).toBeUndefined();
  });
});

describe('readPagemap', () => {
  it('understands entries written before flags existed (in_parent, compat_nr_pages)', async () => {
    const data = encodeImage(
      PAGEMAP_IMAGE,
      [
        { vaddr: '4096', compat_nr_pages: 2 },
        { vaddr: '65536', compat_nr_pages: 5, in_parent: true },
      ],
      { head: { pages_id: 3 } },
    );
    expect(await readPagemap(file('pagemap-9.img', data))).toEqual({
      pagesId: 3,
      ranges: [
        { vaddr: 4096n, nrPages: 2, flags: PE_FLAGS.PRESENT },
        { vaddr: 65536n, nrPages: 5, flags: PE_FLAGS.PARENT },
      ],
    });
  });

  it('reads an empty pagemap (head only)', async () => {
    const data = encodeImage(PAGEMAP_IMAGE, [], { head: { pages_id: 4 } });
    expect(await readPagemap(file('pagemap-2.img', data))).toEqual({ pagesId: 4, ranges: [] });
  });

  it('rejects a pagemap without its head', async () => {
    const data = encodeImage(PSTREE_IMAGE, []);
    data.writeUInt32LE(0x56084025, 4); // a PAGEMAP header and nothing else
    await expect(readPagemap(file('pagemap-2.img', data))).rejects.toMatchObject({
      code: 'ERR_IMAGE_CORRUPT',
      message: expect.stringContaining('no pagemap_head'),
    });
  });
});

describe('readPstree and readInventory', () => {
  it('reads every task with its threads', async () => {
    const data = encodeImage(PSTREE_IMAGE, [
      { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 7] },
      { pid: 4, ppid: 1, pgid: 1, sid: 1 },
    ]);
    expect(await readPstree(file('pstree.img', data))).toEqual([
      { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1, 7] },
      { pid: 4, ppid: 1, pgid: 1, sid: 1, threads: [] },
    ]);
  });

  it('rejects an inventory with no entry', async () => {
    await expect(readInventory(file('inventory.img', encodeImage(INVENTORY_IMAGE, [])))).rejects.toMatchObject({
      code: 'ERR_IMAGE_CORRUPT',
      message: expect.stringContaining('no INVENTORY entry'),
    });
  });

  it('keeps an unknown network lock method as its number', async () => {
    const data = encodeImage(INVENTORY_IMAGE, [{ img_version: 2, network_lock_method: 9, lsmtype: 2, pre_dump_mode: 1 }]);
    expect(await readInventory(file('inventory.img', data))).toMatchObject({ networkLock: 9, lsm: 'apparmor', preDumpMode: 1 });
  });

  it('reads a stats file with neither half as empty stats', async () => {
    expect(await readStats(file('stats-dump', encodeImage(STATS_IMAGE, [{}])))).toEqual({});
  });
});
