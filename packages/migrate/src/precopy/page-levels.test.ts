import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_FLAGS, readPagemap } from '@ferry/core';
import { PageLevels, latestPieces, split, union } from './page-levels';
import { RecordKind } from './page-records';

const P = 4096n;
const data = (pages: number, fill: number) => Buffer.alloc(pages * 4096, fill);

test('union and split of page intervals', () => {
  expect(union([[0, 4], [10, 12]], [[3, 6], [12, 13], [20, 21]])).toEqual([[0, 6], [10, 13], [20, 21]]);
  expect(split([[0, 6], [10, 13]], [[2, 4], [10, 11]])).toEqual([
    [0, 2, false],
    [2, 4, true],
    [4, 6, false],
    [10, 11, true],
    [11, 13, false],
  ]);
});

describe('PageLevels', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-levels-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('each round is a level: its pages present, older ones in the parent', async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 4, data: data(4, 1) });
    await levels.add({ kind: RecordKind.ZERO, task: 1, vaddr: 0x20n * P, pages: 2 });
    await levels.add({ kind: RecordKind.DATA, task: 7, vaddr: 0x5n * P, pages: 1, data: data(1, 7) });
    expect(await levels.endRound()).toEqual({ pages: 7, held: 7 });

    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x11n * P, pages: 1, data: data(1, 2) });
    expect(await levels.endRound()).toEqual({ pages: 1, held: 7 });
    expect(levels.levels).toBe(2);
    expect(readlinkSync(join(dir, '2', 'parent'))).toBe('../1');

    const top = await readPagemap(join(dir, '2', 'pagemap-1.img'));
    expect(top.pagesId).toBe(1);
    expect(top.ranges).toEqual([
      { vaddr: 0x10n * P, nrPages: 1, flags: PE_FLAGS.PARENT },
      { vaddr: 0x11n * P, nrPages: 1, flags: PE_FLAGS.PRESENT },
      { vaddr: 0x12n * P, nrPages: 2, flags: PE_FLAGS.PARENT },
      { vaddr: 0x20n * P, nrPages: 2, flags: PE_FLAGS.PARENT },
    ]);
    expect(readFileSync(join(dir, '2', 'pages-1.img'))).toEqual(data(1, 2));
    // A task without pages this round is all in the parent, with an empty pages file.
    expect((await readPagemap(join(dir, '2', 'pagemap-7.img'))).ranges).toEqual([{ vaddr: 0x5n * P, nrPages: 1, flags: PE_FLAGS.PARENT }]);
    expect(readFileSync(join(dir, '2', 'pages-7.img')).length).toBe(0);
    // Level 1 holds the first round's bytes in address order, zero pages as zeros.
    expect(readFileSync(join(dir, '1', 'pages-1.img'))).toEqual(Buffer.concat([data(4, 1), data(2, 0)]));
  });

  test('pages out of address order within a round are a protocol error', async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 2, data: data(2, 1) });
    await expect(levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x11n * P, pages: 1, data: data(1, 1) })).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
    await levels.close();
  });
});

test('latestPieces takes every page from the newest level that has it, with its place in that level file', () => {
  const present: Record<number, [number, number][]> = { 1: [[0, 10]], 2: [[2, 4], [8, 9]], 3: [[3, 5]] };
  expect(latestPieces([[0, 10]], 3, 1, (l) => present[l] ?? [])).toEqual([
    { start: 0, end: 2, level: 1, fileOffset: 0 },
    { start: 2, end: 3, level: 2, fileOffset: 0 },
    { start: 3, end: 5, level: 3, fileOffset: 0 },
    { start: 5, end: 8, level: 1, fileOffset: 5 },
    { start: 8, end: 9, level: 2, fileOffset: 2 },
    { start: 9, end: 10, level: 1, fileOffset: 9 },
  ]);
  expect(() => latestPieces([[0, 11]], 3, 1, (l) => present[l] ?? [])).toThrow(/held but in no level/);
});

describe('PageLevels.compact', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-compact-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('flattens the chain into one level without a parent, latest content in address order; later rounds build on it', async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 4, data: data(4, 1) });
    await levels.endRound();
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x11n * P, pages: 1, data: data(1, 2) });
    await levels.add({ kind: RecordKind.ZERO, task: 1, vaddr: 0x14n * P, pages: 1 });
    await levels.endRound();
    expect(await levels.compact()).toMatchObject({ pages: 5 });
    expect(levels.levels).toBe(3);
    expect(existsSync(join(dir, '1')) || existsSync(join(dir, '2'))).toBe(false);
    expect(existsSync(join(dir, '3', 'parent'))).toBe(false);
    expect((await readPagemap(join(dir, '3', 'pagemap-1.img'))).ranges).toEqual([{ vaddr: 0x10n * P, nrPages: 5, flags: PE_FLAGS.PRESENT }]);
    expect(readFileSync(join(dir, '3', 'pages-1.img'))).toEqual(Buffer.concat([data(1, 1), data(1, 2), data(2, 1), data(1, 0)]));

    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x12n * P, pages: 1, data: data(1, 3) });
    await levels.endRound();
    expect(readlinkSync(join(dir, '4', 'parent'))).toBe('../3');
  });
});
