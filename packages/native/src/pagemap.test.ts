import { findPresentRanges, NativeError, PAGE_SIZE, PageFlag, readPagemap, type PagemapMethod } from './index';
import { spawnPatternChild, type PatternChild } from './testing';

let child: PatternChild;
beforeAll(async () => {
  child = await spawnPatternChild({ dataPages: 64, holePages: 4, tailPages: 4, sparsePages: 64 });
});
afterAll(() => child.kill());

const methods: PagemapMethod[] = ['read', 'scan'];

describe('readPagemap', () => {
  it('uses PAGEMAP_SCAN by default on this kernel (>= 6.7)', async () => {
    const map = await readPagemap(child.pid, child.data);
    expect(map.method).toBe('scan');
    expect(map.known & PageFlag.EXCLUSIVE).toBe(0);
  });

  it.each(methods)('%s: written pages are present, the hole is not', async (method) => {
    const span = { address: child.base, length: child.data.length + child.hole.length + child.tail.length };
    const map = await readPagemap(child.pid, span, { method });
    expect(map.method).toBe(method);
    expect(map.address).toBe(child.base);
    const present = [...map.flags].map((f) => (f & PageFlag.PRESENT ? 1 : 0));
    expect(present).toEqual([...Array(64).fill(1), ...Array(4).fill(0), ...Array(4).fill(1)]);
    for (let i = 0; i < 64; i++) expect(map.flags[i]! & (PageFlag.SWAPPED | PageFlag.FILE_OR_SHARED_ANON)).toBe(0);
  });

  it.each(methods)('%s: mapped but never written pages are not present', async (method) => {
    const map = await readPagemap(child.pid, child.sparse, { method });
    expect(map.flags.length).toBe(64);
    map.flags.forEach((flags, i) => expect(flags & PageFlag.PRESENT).toBe(i % 2 === 0 ? PageFlag.PRESENT : 0));
  });

  it('read: reports pages only this process maps as exclusive', async () => {
    const map = await readPagemap(child.pid, child.data, { method: 'read' });
    expect(map.known & PageFlag.EXCLUSIVE).toBe(PageFlag.EXCLUSIVE);
    expect(map.flags.every((f) => (f & PageFlag.EXCLUSIVE) !== 0)).toBe(true);
  });

  it.each(methods)('%s: fails with ENOENT for a process that does not exist', async (method) => {
    const error = await readPagemap(4_194_304, child.data, { method }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ code: 'ENOENT', syscall: 'open', message: expect.stringContaining('/proc/4194304/pagemap') });
  });

  it('checks its arguments', async () => {
    await expect(readPagemap(child.pid, { address: child.base + 1n, length: PAGE_SIZE })).rejects.toThrow(/page-aligned/);
    await expect(readPagemap(child.pid, { address: child.base, length: 100 })).rejects.toThrow(RangeError);
    await expect(readPagemap(child.pid, child.data, { method: 'fast' as never })).rejects.toThrow(RangeError);
    await expect(readPagemap(child.pid, child.data, { metod: 'read' } as never)).rejects.toThrow(/did you mean "method"/);
  });
});

describe('findPresentRanges', () => {
  it.each(methods)('%s: returns the runs of present pages', async (method) => {
    const span = { address: child.base, length: child.data.length + child.hole.length + child.tail.length };
    expect(await findPresentRanges(child.pid, span, { method })).toEqual([child.data, child.tail]);
    const sparse = await findPresentRanges(child.pid, child.sparse, { method });
    expect(sparse).toEqual(
      Array.from({ length: 32 }, (_, i) => ({ address: child.sparse.address + BigInt(2 * i * PAGE_SIZE), length: PAGE_SIZE })),
    );
  });
});
