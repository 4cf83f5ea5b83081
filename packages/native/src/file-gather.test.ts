import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { gatherFiles, scatterFiles } from './file-gather';
import { NativeError } from './native-error';

describe('gatherFiles', () => {
  let dir: string;
  let a: number;
  let b: number;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-gather-'));
    writeFileSync(join(dir, 'a'), Buffer.from('0123456789'));
    writeFileSync(join(dir, 'b'), Buffer.from('abcdefghij'));
    a = openSync(join(dir, 'a'), 'r');
    b = openSync(join(dir, 'b'), 'r');
  });
  afterAll(() => {
    closeSync(a);
    closeSync(b);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads ranges of several files back to back, in the order given', async () => {
    const out = await gatherFiles([
      { fd: a, offset: 8, length: 2 },
      { fd: b, offset: 0, length: 3 },
      { fd: a, offset: 0, length: 1 },
    ]);
    expect(out.toString()).toBe('89abc0');
  });

  it('fills a given buffer and returns the used part', async () => {
    const dest = Buffer.alloc(16, 0x2e);
    const out = await gatherFiles([{ fd: b, offset: 5, length: 5 }], dest);
    expect(out.toString()).toBe('fghij');
    expect(dest.toString()).toBe('fghij...........');
  });

  it('rejects a range past the end of its file with a NativeError, and bad input with a TypeError or RangeError', async () => {
    await expect(gatherFiles([{ fd: a, offset: 8, length: 4 }])).rejects.toBeInstanceOf(NativeError);
    await expect(gatherFiles([{ fd: -1, offset: 0, length: 1 }])).rejects.toBeInstanceOf(TypeError);
    await expect(gatherFiles([{ fd: a, offset: 0, length: 4 }], Buffer.alloc(2))).rejects.toBeInstanceOf(RangeError);
  });
});

describe('scatterFiles', () => {
  it('writes consecutive bytes of one buffer to ranges of several files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-scatter-'));
    try {
      writeFileSync(join(dir, 'x'), Buffer.from('..........'));
      writeFileSync(join(dir, 'y'), Buffer.from('..........'));
      const x = openSync(join(dir, 'x'), 'r+');
      const y = openSync(join(dir, 'y'), 'r+');
      await scatterFiles([{ fd: x, offset: 2, length: 3 }, { fd: y, offset: 8, length: 2 }, { fd: x, offset: 9, length: 1 }], Buffer.from('ABCDEF'));
      closeSync(x);
      closeSync(y);
      expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('..ABC....F');
      expect(readFileSync(join(dir, 'y'), 'utf8')).toBe('........DE');
      await expect(scatterFiles([{ fd: 0, offset: 0, length: 4 }], Buffer.alloc(2))).rejects.toBeInstanceOf(RangeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
