import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PageLevels } from '../precopy/page-levels';
import { RecordKind } from '../precopy/page-records';
import { ChainPageStore, FetchedPages, localRun, readLocal, runIn } from './page-store';

const P = 4096n;
const pages = (count: number, fill: number) => Buffer.alloc(count * 4096, fill);

describe('ChainPageStore', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-chain-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads each page from the highest level holding it, across hash-pre-copy's levels", async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 8, data: pages(8, 1) });
    await levels.add({ kind: RecordKind.ZERO, task: 1, vaddr: 0x40n * P, pages: 2 });
    await levels.add({ kind: RecordKind.DATA, task: 9, vaddr: 0x5n * P, pages: 1, data: pages(1, 9) });
    await levels.endRound();
    levels.beginRound();
    // Rewritten in place in the base (0x12..0x13), and new pages only this level has (0x18..0x19).
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x12n * P, pages: 2, data: pages(2, 2) });
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x18n * P, pages: 2, data: pages(2, 3) });
    await levels.endRound();
    await levels.close();

    const store = await ChainPageStore.open(join(dir, '2'));
    try {
      expect(store.held(1)).toEqual([[0x10, 0x1a], [0x40, 0x42]]);
      expect(store.held(9)).toEqual([[0x5, 0x6]]);
      expect(store.run(1, 0x10, 100)).toBe(10);
      expect(store.run(1, 0x1a, 100)).toBe(0);
      const all = await store.read(1, 0x10, 10);
      expect(all).toEqual(Buffer.concat([pages(2, 1), pages(2, 2), pages(4, 1), pages(2, 3)]));
      expect(await store.read(1, 0x40, 2)).toEqual(pages(2, 0));
      expect(await store.read(9, 0x5, 1)).toEqual(pages(1, 9));
      await expect(store.read(1, 0x19, 2)).rejects.toThrow(/not in the chain/);
    } finally {
      store.close();
    }
  });
});

describe('FetchedPages', () => {
  it('serves what was fetched and frees a chunk once the daemon has taken all of it', async () => {
    const fetched = new FetchedPages();
    fetched.add(1, 100, pages(4, 1));
    fetched.add(1, 104, pages(2, 2));
    fetched.add(1, 10, pages(1, 3));
    expect(fetched.held(1)).toEqual([[10, 11], [100, 106]]);
    expect(await fetched.read(1, 102, 3)).toEqual(Buffer.concat([pages(2, 1), pages(1, 2)]));
    fetched.taken(1, 100, 3);
    expect(fetched.bytes).toBe(7 * 4096);
    fetched.taken(1, 103, 2);
    expect(fetched.held(1)).toEqual([[10, 11], [104, 106]]);
    expect(fetched.bytes).toBe(3 * 4096);
  });
});

describe('local runs over several stores', () => {
  it('chains runs of different stores and reads each piece from the store that has it', async () => {
    const a = new FetchedPages();
    const b = new FetchedPages();
    a.add(1, 0, pages(2, 1));
    b.add(1, 2, pages(3, 2));
    a.add(1, 5, pages(1, 3));
    expect(localRun([a, b], 1, 0, 100)).toBe(6);
    expect(localRun([a, b], 1, 1, 3)).toBe(3);
    expect(localRun([a, b], 1, 6, 3)).toBe(0);
    expect(await readLocal([a, b], 1, 1, 5)).toEqual(Buffer.concat([pages(1, 1), pages(3, 2), pages(1, 3)]));
    expect(runIn([[0, 2], [5, 9]], 6, 100)).toBe(3);
  });
});
