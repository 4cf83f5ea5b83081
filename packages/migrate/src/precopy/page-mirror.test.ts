import { hashHalves, SentPages, TaskPages } from './page-mirror';

const hashes = (...values: bigint[]) => hashHalves(BigUint64Array.from(values));

test('a page is held only with the hash recorded for it, both halves compared', () => {
  const pages = new TaskPages();
  const h = hashes(0x1234_5678_9abc_def0n, 0x1234_5678_0000_0000n, 0x0000_0000_9abc_def0n);
  const page = 0x7fff_1234_5; // above 2^31, as user-space page numbers are
  expect(pages.holds(page, h, 0)).toBe(false);
  pages.record(page, h, 0);
  expect(pages.holds(page, h, 0)).toBe(true);
  expect(pages.holds(page, h, 1)).toBe(false); // same high half
  expect(pages.holds(page, h, 2)).toBe(false); // same low half
  expect(pages.holds(page + 1, h, 0)).toBe(false); // its neighbour in the chunk
  expect(pages.holds(page + 512, h, 0)).toBe(false); // the next chunk
});

test('a zero hash is not held by default, and recording again replaces', () => {
  const pages = new TaskPages();
  const h = hashes(0n, 7n);
  expect(pages.holds(10, h, 0)).toBe(false);
  pages.record(10, h, 0);
  expect(pages.holds(10, h, 0)).toBe(true);
  pages.record(10, h, 1);
  expect(pages.holds(10, h, 0)).toBe(false);
  expect(pages.holds(10, h, 1)).toBe(true);
});

test('pages across chunk boundaries and tasks are kept apart', () => {
  const sent = new SentPages();
  const h = hashes(1n, 2n);
  for (let p = 500; p < 1100; p++) sent.forTask(1).record(p, h, p % 2);
  for (let p = 500; p < 1100; p++) {
    expect(sent.forTask(1).holds(p, h, p % 2)).toBe(true);
    expect(sent.forTask(1).holds(p, h, (p + 1) % 2)).toBe(false);
    expect(sent.forTask(2).holds(p, h, p % 2)).toBe(false);
  }
  expect(sent.forTask(1)).toBe(sent.forTask(1));
});
