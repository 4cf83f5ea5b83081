import { randomBytes } from 'node:crypto';

import { findZeroPages, hashPages, PAGE_SIZE } from './index';
import { patternPage } from './testing';

// Reference values from the xxhsum CLI (Debian's `xxhash` package, 0.8.1): `xxhsum -H3 FILE` over a file holding
// exactly that 4 KiB page. XXH3-64 with the default seed, the same function as cc/page-hash.cc.
const REFERENCE: [string, () => Buffer, bigint][] = [
  ['zero page', () => Buffer.alloc(PAGE_SIZE), 0x93d76fe148c689ban],
  ['byte i % 251', () => Buffer.from(Array.from({ length: PAGE_SIZE }, (_, i) => i % 251)), 0x7135ffa504f1bc71n],
  ['pattern page 0', () => patternPage('page', 0), 0x6e96f64398cfda10n],
  ['pattern page 1', () => patternPage('page', 1), 0x057323ce49be9905n],
];

describe('hashPages', () => {
  it.each(REFERENCE)('matches xxhsum -H3 for the %s', async (_, make, expected) => {
    const { hashes } = await hashPages(make());
    expect(hashes).toEqual(new BigUint64Array([expected]));
  });

  it('gives equal pages equal hashes and different pages different ones', async () => {
    const a = patternPage('page', 5);
    const b = patternPage('page', 6);
    const almost = Buffer.from(a);
    almost[PAGE_SIZE - 1] ^= 1;
    const { hashes } = await hashPages(Buffer.concat([a, b, a, almost]));
    expect(hashes[0]).toBe(hashes[2]);
    expect(new Set(hashes).size).toBe(3);
    expect(hashes[3]).not.toBe(hashes[0]);
  });

  it('gives the same hashes on one worker and on many, for a buffer split across workers', async () => {
    const data = randomBytes(16 << 20); // 4096 pages: 16 runs of 256 at concurrency 16
    const one = await hashPages(data, { concurrency: 1 });
    for (const concurrency of [2, 3, 16]) {
      expect((await hashPages(data, { concurrency })).hashes).toEqual(one.hashes);
    }
    expect(one.hashes.length).toBe(4096);
    expect(one.zero).toBeNull();
  });

  it('reads an unaligned view correctly', async () => {
    const backing = Buffer.alloc(3 * PAGE_SIZE + 3);
    const view = backing.subarray(3);
    patternPage('page', 1).copy(view, PAGE_SIZE);
    const { hashes } = await hashPages(view);
    expect(hashes[1]).toBe(0x057323ce49be9905n);
    expect(hashes[0]).toBe(0x93d76fe148c689ban);
  });

  it('finds zero pages in the same pass, and on its own', async () => {
    const pages = 1000;
    const data = Buffer.alloc(pages * PAGE_SIZE);
    const expected = new Uint8Array(pages).fill(1);
    for (let i = 0; i < pages; i++) {
      if (i % 3 === 0) continue;
      // One non-zero byte, anywhere in the page: first, last, or in between.
      const offset = i % 3 === 1 ? (i * 97) % PAGE_SIZE : PAGE_SIZE - 1;
      data[i * PAGE_SIZE + offset] = 1 + (i % 255);
      expected[i] = 0;
    }
    const both = await hashPages(data, { zero: true, concurrency: 3 });
    expect(both.zero).toEqual(expected);
    expect(both.hashes[0]).toBe(0x93d76fe148c689ban);
    expect(await findZeroPages(data)).toEqual(expected);
    expect(await findZeroPages(data, { concurrency: 1 })).toEqual(expected);
  });

  it('handles an empty buffer', async () => {
    expect(await hashPages(Buffer.alloc(0), { zero: true })).toEqual({
      hashes: new BigUint64Array(0),
      zero: new Uint8Array(0),
    });
  });

  it('checks its arguments', async () => {
    await expect(hashPages(Buffer.alloc(100))).rejects.toThrow(/multiple of 4096/);
    await expect(hashPages([1, 2] as unknown as Buffer)).rejects.toThrow(TypeError);
    await expect(hashPages(Buffer.alloc(4096), { concurency: 2 } as never)).rejects.toThrow(/did you mean "concurrency"/);
    await expect(hashPages(Buffer.alloc(4096), { concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(findZeroPages(Buffer.alloc(4096), { concurrency: 1.5 })).rejects.toThrow(TypeError);
  });
});
