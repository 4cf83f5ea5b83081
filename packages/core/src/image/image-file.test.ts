import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import { isFerryError } from '../model/ferry-error';
import { decodeImage, encodeImage, readImageEntries, type ImageSpec } from './image-file';
import { IMAGE_KINDS, IMG_COMMON_MAGIC } from './image-magic';
import { INVENTORY_IMAGE, PAGEMAP_IMAGE, PSTREE_IMAGE, STATS_IMAGE } from './image-schema';

// Recorded from CRIU 4.2.1 dumping fixtures/workload.c (init of its own PID namespace) on kernel 6.18.
const REAL_PSTREE = '19435654303027500a00000008011000180120012801';
const REAL_STATS_DUMP =
  '4059105506330957260000000a24086b10b2fd0218cfc60220c3bb02289e4030003897404000480050085808600068007000';

function expectCorrupt(fn: () => unknown, ...fragments: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(isFerryError(err, 'ERR_IMAGE_CORRUPT')).toBe(true);
    for (const fragment of fragments) expect((err as Error).message).toContain(fragment);
    expect((err as { hint?: string }).hint).toBeTruthy();
    return;
  }
  throw new Error('expected ERR_IMAGE_CORRUPT');
}

describe('decodeImage', () => {
  it('reads a pstree image recorded from real CRIU', () => {
    const image = decodeImage(Buffer.from(REAL_PSTREE, 'hex'), 'pstree.img', PSTREE_IMAGE);
    expect(image.oldFormat).toBe(false);
    expect(image.entries).toEqual([{ offset: 8, value: { pid: 1, ppid: 0, pgid: 1, sid: 1, threads: [1] } }]);
  });

  it('reads a service image (stats-dump) recorded from real CRIU', () => {
    const image = decodeImage(Buffer.from(REAL_STATS_DUMP, 'hex'), 'stats-dump', STATS_IMAGE);
    expect(image.entries[0]!.value.dump).toMatchObject({ freezing_time: 107, frozen_time: 48818, pages_written: '8215' });
  });

  it('round-trips entries and a head entry', () => {
    const entries = [
      { vaddr: '4194304', compat_nr_pages: 0, nr_pages: '3', flags: 4 },
      { vaddr: '140737488343040', compat_nr_pages: 0, nr_pages: '1', flags: 1 },
    ];
    const data = encodeImage(PAGEMAP_IMAGE, entries, { head: { pages_id: 7 } });
    expect(data.readUInt32LE(0)).toBe(IMG_COMMON_MAGIC);
    expect(data.readUInt32LE(4)).toBe(IMAGE_KINDS.pagemap.magic);
    const image = decodeImage(data, 'pagemap-1.img', PAGEMAP_IMAGE);
    expect(image.head?.value).toEqual({ pages_id: 7 });
    expect(image.entries.map((e) => e.value)).toEqual(entries);
  });

  it('accepts a pagemap with a head and no ranges (a task with no memory to dump)', () => {
    const image = decodeImage(encodeImage(PAGEMAP_IMAGE, [], { head: { pages_id: 1 } }), 'pagemap-1.img', PAGEMAP_IMAGE);
    expect(image.entries).toEqual([]);
    expect(image.head?.offset).toBe(8);
  });

  it('returns no head and no entries for a file that is only a magic', () => {
    const image = decodeImage(encodeImage(PSTREE_IMAGE, []), 'pstree.img', PSTREE_IMAGE);
    expect(image.head).toBeUndefined();
    expect(image.entries).toEqual([]);
  });

  it('writes inventory.img with its own magic only (no set magic), as CRIU does', () => {
    const data = encodeImage(INVENTORY_IMAGE, [{ img_version: 2 }]);
    expect(data.readUInt32LE(0)).toBe(IMAGE_KINDS.inventory.magic);
    expect(decodeImage(data, 'inventory.img', INVENTORY_IMAGE).entries[0]!.value).toEqual({ img_version: 2 });
  });

  it('accepts images from before format v1.1, which lack the set magic', () => {
    const data = encodeImage(PSTREE_IMAGE, [{ pid: 3, ppid: 1, pgid: 3, sid: 3 }]).subarray(4);
    const image = decodeImage(data, 'pstree.img', PSTREE_IMAGE);
    expect(image.oldFormat).toBe(true);
    expect(image.entries[0]!.value).toMatchObject({ pid: 3 });
  });

  it('rejects a bad set magic, naming the file and offset 0', () => {
    const data = encodeImage(PSTREE_IMAGE, [{ pid: 1, ppid: 0, pgid: 1, sid: 1 }]);
    data.writeUInt32LE(0xdeadbeef, 0);
    expectCorrupt(() => decodeImage(data, '/x/pstree.img', PSTREE_IMAGE), '/x/pstree.img', 'bad magic 0xdeadbeef at offset 0', 'PSTREE');
  });

  it('rejects an image of another type (bad image magic at offset 4)', () => {
    const data = encodeImage(PSTREE_IMAGE, []);
    expectCorrupt(() => decodeImage(data, 'pagemap-1.img', PAGEMAP_IMAGE), 'bad magic 0x50273030 at offset 4', 'PAGEMAP');
  });

  it('rejects a file too short for its header', () => {
    expectCorrupt(() => decodeImage(Buffer.from([0x19, 0x43]), 'pstree.img', PSTREE_IMAGE), 'too short');
    expectCorrupt(() => decodeImage(Buffer.from('19435654', 'hex'), 'pstree.img', PSTREE_IMAGE), 'too short');
  });

  it('reports a truncated entry with its offset', () => {
    const full = encodeImage(PSTREE_IMAGE, [
      { pid: 1, ppid: 0, pgid: 1, sid: 1 },
      { pid: 2, ppid: 1, pgid: 1, sid: 1, threads: [2, 3] },
    ]);
    const secondOffset = 8 + 4 + full.readUInt32LE(8);
    expectCorrupt(() => decodeImage(full.subarray(0, full.length - 2), 'pstree.img', PSTREE_IMAGE), `entry at offset ${secondOffset} declares`);
  });

  it('reports a truncated length prefix', () => {
    const full = encodeImage(PSTREE_IMAGE, [{ pid: 1, ppid: 0, pgid: 1, sid: 1 }]);
    const data = Buffer.concat([full, Buffer.from([5, 0])]);
    expectCorrupt(() => decodeImage(data, 'pstree.img', PSTREE_IMAGE), `truncated entry length at offset ${full.length}`);
  });

  it('rejects an entry that lacks a field CRIU declares required', () => {
    const bogus = Buffer.concat([encodeImage(PSTREE_IMAGE, []), Buffer.from([2, 0, 0, 0, 0x08, 0x01])]); // pid only
    expectCorrupt(() => decodeImage(bogus, 'pstree.img', PSTREE_IMAGE), 'entry at offset 8 is not a valid pstree_entry', "missing required 'ppid'");
  });

  it('rejects garbage protobuf', () => {
    const data = Buffer.concat([encodeImage(PSTREE_IMAGE, []), Buffer.from([3, 0, 0, 0, 0xff, 0xff, 0xff])]);
    expectCorrupt(() => decodeImage(data, 'pstree.img', PSTREE_IMAGE), 'entry at offset 8');
  });

  describe('entries followed by raw payload', () => {
    const Chunk = new protobuf.Type('chunk_entry').add(new protobuf.Field('bytes', 1, 'uint32', 'required'));
    new protobuf.Root().add(Chunk).resolveAll();
    const spec: ImageSpec = { kind: { name: 'CHUNKS', magic: 0x12345678, set: 'common' }, entry: Chunk, payloadBytes: (e) => e.bytes as number };

    it('hands each entry its payload', () => {
      const data = encodeImage(spec, [{ bytes: 3 }, { bytes: 0 }, { bytes: 2 }], {
        payloads: [Buffer.from('abc'), undefined, Buffer.from('de')],
      });
      const image = decodeImage(data, 'chunks.img', spec);
      expect(image.entries.map((e) => e.payload?.toString())).toEqual(['abc', undefined, 'de']);
    });

    it('reports a truncated payload', () => {
      const data = encodeImage(spec, [{ bytes: 10 }], { payloads: [Buffer.from('short')] });
      expectCorrupt(() => decodeImage(data, 'chunks.img', spec), 'payload of the entry at offset 8 needs 10 bytes but only 5 remain');
    });
  });
});

describe('readImageEntries', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-image-file-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file from disk', async () => {
    writeFileSync(join(dir, 'pstree.img'), Buffer.from(REAL_PSTREE, 'hex'));
    const image = await readImageEntries(join(dir, 'pstree.img'), PSTREE_IMAGE);
    expect(image.path).toBe(join(dir, 'pstree.img'));
    expect(image.entries).toHaveLength(1);
  });

  it('throws ERR_IMAGE_NOT_FOUND for a missing file', async () => {
    await expect(readImageEntries(join(dir, 'pstree.img'), PSTREE_IMAGE)).rejects.toMatchObject({
      code: 'ERR_IMAGE_NOT_FOUND',
      message: expect.stringContaining('pstree.img'),
    });
  });
});
