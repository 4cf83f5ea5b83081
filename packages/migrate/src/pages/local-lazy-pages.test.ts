/**
 * ferry's lazy-pages handler against a fake userfaultfd: what the kernel answers (EEXIST, ENOENT, EAGAIN, a short
 * copy) and the layout events (REMOVE, REMAP, FORK) decide what goes where. The real kernel and CRIU:
 * local-restore.int.test.ts.
 */
import type { Userfaultfd, UffdMessage, UffdResult } from '@ferry/core';
import { LocalLazyPages } from './local-lazy-pages';
import type { TodoRange } from './lazy-todo';
import { PAGE, type PageStore } from './page-store';

/** Image content: every byte of page p of task pid is (pid + p) & 0xff. */
const store: PageStore = {
  held: () => [],
  run: () => 0,
  read: async (pid, first, count) => {
    const b = Buffer.alloc(count * PAGE);
    for (let i = 0; i < count; i++) b.fill((pid + first + i) & 0xff, i * PAGE, (i + 1) * PAGE);
    return b;
  },
};

type Answer = (dst: number, pages: number) => UffdResult | undefined;

/** A fake userfaultfd: memory as page → content byte; queued messages; scripted answers to copies. */
class FakeUffd {
  readonly memory = new Map<number, number>();
  readonly calls: string[] = [];
  readonly queue: UffdMessage[] = [];
  readonly handle = { closed: false, fd: 0 };
  answer: Answer = () => undefined;
  unregistered: [number, number][] = [];

  read(): UffdMessage[] | null {
    return this.queue.splice(0);
  }

  copy(dst: bigint, src: Uint8Array): UffdResult {
    const page = Number(dst / BigInt(PAGE));
    const pages = src.length / PAGE;
    this.calls.push(`copy ${page}+${pages}`);
    const scripted = this.answer(page, pages);
    const done = scripted ? scripted.bytes / PAGE : pages;
    for (let i = 0; i < done; i++) {
      if (this.memory.has(page + i)) throw new Error(`page ${page + i} overwritten`);
      this.memory.set(page + i, src[i * PAGE]!);
    }
    return scripted ?? { bytes: src.length };
  }

  zeropage(start: bigint): UffdResult {
    const page = Number(start / BigInt(PAGE));
    this.calls.push(`zero ${page}`);
    this.memory.set(page, 0);
    return { bytes: PAGE };
  }

  wake(start: bigint, len: bigint): UffdResult {
    this.calls.push(`wake ${Number(start / BigInt(PAGE))}+${Number(len / BigInt(PAGE))}`);
    return { bytes: 0 };
  }

  unregister(start: bigint, len: bigint): UffdResult {
    this.unregistered.push([Number(start / BigInt(PAGE)), Number(len / BigInt(PAGE))]);
    return { bytes: 0 };
  }

  close(): void {
    this.handle.closed = true;
  }
}

const as = (f: FakeUffd) => f as unknown as Userfaultfd;
const at = (page: number) => BigInt(page) * BigInt(PAGE);

function handler(plan: Record<number, TodoRange[]>, children: FakeUffd[] = []) {
  const uffds: FakeUffd[] = [];
  const h = new LocalLazyPages({
    store,
    plan: new Map(Object.entries(plan).map(([pid, r]) => [Number(pid), r])),
    // Ready: whichever has messages queued (after a turn of the event loop, as a real poll would).
    poll: async (list) => {
      await new Promise((r) => setTimeout(r, 1));
      return list.filter((u) => (u as unknown as FakeUffd).queue.length > 0);
    },
    adopt: () => {
      const child = children.shift()!;
      uffds.push(child);
      return as(child);
    },
  });
  return { h, uffds };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 2000; !ok(); await new Promise((r) => setTimeout(r, 2))) {
    if (Date.now() > deadline) throw new Error(`not within 2 s: ${what}`);
  }
}

test('a fault copies 16 pages from the faulting one within its range; a page with nothing to do gets a zero page; the rest fills after the restore', async () => {
  const f = new FakeUffd();
  const { h } = handler({ 7: [{ start: 100, end: 200, img: 100 }] });
  h.addTask(7, as(f));
  f.queue.push({ event: 'pagefault', address: at(150) + 123n, write: true }, { event: 'pagefault', address: at(5), write: false });
  await until('both faults served', () => f.calls.length >= 2);
  expect(f.calls.slice(0, 2)).toEqual(['copy 150+16', 'zero 5']);
  expect(f.memory.get(150)).toBe((7 + 150) & 0xff);
  h.restoreFinished();
  const report = await h.finished;
  expect(report).toMatchObject({ pagesCopied: 100, faults: 2, zeroPages: 1 });
  for (let p = 100; p < 200; p++) expect(f.memory.get(p)).toBe((7 + p) & 0xff);
  expect(f.handle.closed).toBe(true);
});

test('EEXIST stops a copy short: what it covered is woken, the page there is never overwritten, the rest still goes in', async () => {
  const f = new FakeUffd();
  f.memory.set(12, 0xee); // the task has this page already
  f.answer = (dst, pages) => (dst <= 12 && dst + pages > 12 ? { bytes: (12 - dst) * PAGE, errno: 'EEXIST' } : undefined);
  const { h } = handler({ 1: [{ start: 10, end: 20, img: 10 }] });
  h.addTask(1, as(f));
  h.restoreFinished();
  await h.finished;
  expect(f.calls).toEqual(['copy 10+10', 'wake 10+10', 'copy 13+7']);
  expect(f.memory.get(12)).toBe(0xee);
  expect(f.memory.get(19)).toBe((1 + 19) & 0xff);
});

test('ENOENT (a VMA boundary or a hole) is retried in halves: only the pages without a VMA are skipped', async () => {
  const f = new FakeUffd();
  f.answer = (dst, pages) => (dst <= 5 && dst + pages > 5 ? { bytes: 0, errno: 'ENOENT' } : undefined); // page 5 has no VMA
  const { h } = handler({ 1: [{ start: 0, end: 8, img: 0 }] });
  h.addTask(1, as(f));
  h.restoreFinished();
  const report = await h.finished;
  expect(report.pagesCopied).toBe(7);
  expect([...f.memory.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 6, 7]);
});

test('EAGAIN (a layout change not yet read) puts the range back and it is copied again', async () => {
  const f = new FakeUffd();
  let refusals = 1;
  f.answer = () => (refusals-- > 0 ? { bytes: 2 * PAGE, errno: 'EAGAIN' } : undefined);
  const { h } = handler({ 1: [{ start: 0, end: 6, img: 0 }] });
  h.addTask(1, as(f));
  h.restoreFinished();
  const report = await h.finished;
  expect(report.pagesCopied).toBe(6);
  expect(f.calls).toEqual(['copy 0+6', 'wake 0+6', 'copy 2+4']);
});

test('REMOVE unregisters and forgets its pages (zeros stay zeros); REMAP moves what was to do with its content; FORK gives the child what was to do', async () => {
  const f = new FakeUffd();
  const child = new FakeUffd();
  const { h } = handler({ 3: [{ start: 0, end: 10, img: 0 }, { start: 20, end: 30, img: 20 }] }, [child]);
  h.addTask(3, as(f));
  f.queue.push(
    { event: 'remove', start: at(0), end: at(4) },
    { event: 'remap', from: at(20), to: at(500), len: BigInt(10 * PAGE) },
    { event: 'fork', uffd: {} as never },
  );
  await until('the events read', () => f.queue.length === 0 && f.unregistered.length > 0);
  expect(f.unregistered).toEqual([[0, 4]]);
  h.restoreFinished();
  const report = await h.finished;
  for (const u of [f, child]) {
    expect([...u.memory.keys()].filter((p) => p < 4)).toEqual([]);
    expect(u.memory.get(6)).toBe((3 + 6) & 0xff);
    expect(u.memory.get(505)).toBe((3 + 25) & 0xff); // moved: the image's page 25
    expect([...u.memory.keys()].filter((p) => p >= 20 && p < 30)).toEqual([]);
  }
  expect(report).toMatchObject({ forks: 1, removed: 4, remapped: 10 });
});

test('a task gone (ESRCH) is done: the fill finishes without it', async () => {
  const f = new FakeUffd();
  f.answer = () => ({ bytes: 0, errno: 'ESRCH' });
  const { h } = handler({ 1: [{ start: 0, end: 4000, img: 0 }] });
  h.addTask(1, as(f));
  h.restoreFinished();
  const report = await h.finished;
  expect(report.pagesCopied).toBe(0);
  expect(f.calls).toEqual(['copy 0+1024']);
  expect(f.handle.closed).toBe(true);
});
