import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PE_FLAGS, readPagemap } from '@ferry/core';
import { PageLevels } from './page-levels';
import { split, subtract, union } from './page-intervals';
import { RecordKind } from './page-records';

const P = 4096n;
const data = (pages: number, fill: number) => Buffer.alloc(pages * 4096, fill);

test('union, split and subtract of page intervals', () => {
  expect(union([[0, 4], [10, 12]], [[3, 6], [12, 13], [20, 21]])).toEqual([[0, 6], [10, 13], [20, 21]]);
  expect(split([[0, 6], [10, 13]], [[2, 4], [10, 11]])).toEqual([
    [0, 2, false],
    [2, 4, true],
    [4, 6, false],
    [10, 11, true],
    [11, 13, false],
  ]);
  expect(subtract([[0, 10], [20, 30]], [[2, 4], [8, 22], [25, 26]])).toEqual([[0, 2], [4, 8], [22, 25], [26, 30]]);
  expect(subtract([[0, 5]], [])).toEqual([[0, 5]]);
  expect(subtract([[0, 5]], [[0, 5]])).toEqual([]);
});

describe('PageLevels', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-levels-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('round 1 is the base; later rounds rewrite its pages in place and keep only new pages in their own level', async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 4, data: data(4, 1) });
    await levels.add({ kind: RecordKind.ZERO, task: 1, vaddr: 0x20n * P, pages: 2 });
    await levels.add({ kind: RecordKind.DATA, task: 7, vaddr: 0x5n * P, pages: 1, data: data(1, 7) });
    expect(await levels.endRound()).toEqual({ pages: 7, held: 7, rewritten: 0 });
    expect(readFileSync(join(dir, '1', 'pages-1.img'))).toEqual(Buffer.concat([data(4, 1), data(2, 0)]));

    levels.beginRound();
    // One record spanning a base page (0x13), a new page (0x14) and back into nothing else.
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x11n * P, pages: 1, data: data(1, 2) });
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x13n * P, pages: 2, data: Buffer.concat([data(1, 3), data(1, 4)]) });
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x21n * P, pages: 1, data: data(1, 5) });
    expect(await levels.endRound()).toEqual({ pages: 4, held: 8, rewritten: 3 });
    expect(levels.levels).toBe(2);
    expect(readlinkSync(join(dir, '2', 'parent'))).toBe('../1');

    // The base holds the latest content of its pages...
    expect(readFileSync(join(dir, '1', 'pages-1.img'))).toEqual(Buffer.concat([data(1, 1), data(1, 2), data(1, 1), data(1, 3), data(1, 0), data(1, 5)]));
    // ...and level 2 only the page that is new since round 1.
    expect(readFileSync(join(dir, '2', 'pages-1.img'))).toEqual(data(1, 4));
    expect((await readPagemap(join(dir, '2', 'pagemap-1.img'))).ranges).toEqual([
      { vaddr: 0x10n * P, nrPages: 4, flags: PE_FLAGS.PARENT },
      { vaddr: 0x14n * P, nrPages: 1, flags: PE_FLAGS.PRESENT },
      { vaddr: 0x20n * P, nrPages: 2, flags: PE_FLAGS.PARENT },
    ]);
    // A task without pages this round is all in the parent, with an empty pages file.
    expect((await readPagemap(join(dir, '2', 'pagemap-7.img'))).ranges).toEqual([{ vaddr: 0x5n * P, nrPages: 1, flags: PE_FLAGS.PARENT }]);
    expect(readFileSync(join(dir, '2', 'pages-7.img')).length).toBe(0);
    expect(existsSync(join(dir, '1', 'parent'))).toBe(false);
    await levels.close();
  });

  test('pages out of address order within a round are a protocol error', async () => {
    const levels = new PageLevels(dir);
    levels.beginRound();
    await levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x10n * P, pages: 2, data: data(2, 1) });
    await expect(levels.add({ kind: RecordKind.DATA, task: 1, vaddr: 0x11n * P, pages: 1, data: data(1, 1) })).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
    await levels.close();
  });
});
