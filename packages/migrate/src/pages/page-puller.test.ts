import type { GetRequest } from './link-frames';
import { PagePuller, type PageLink } from './page-puller';
import { FetchedPages } from './page-store';

/** A link whose GETs the test answers by hand, in any order. */
class ManualLink implements PageLink {
  readonly asked: (GetRequest & { answer: () => void; fail: (e: unknown) => void })[] = [];
  get(request: GetRequest): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.asked.push({ ...request, answer: () => resolve(Buffer.alloc(request.nrPages * 4096, request.nrPages)), fail: reject });
    });
  }
  pages(i: number): [number, number] {
    const a = this.asked[i]!;
    return [Number(a.vaddr / 4096n), Number(a.vaddr / 4096n) + a.nrPages];
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('PagePuller', () => {
  it('pulls everything missing in batches, a bounded number in flight', async () => {
    const link = new ManualLink();
    const store = new FetchedPages();
    const puller = new PagePuller(link, new Map([[1, [[0, 1000]]], [2, [[50, 60]]]]), store, { batchPages: 256, inFlight: 2 });
    puller.start();
    expect(link.asked.map((_, i) => link.pages(i))).toEqual([[0, 256], [256, 512]]);
    while (link.asked.some((a) => a.answer)) {
      const next = link.asked.shift();
      if (!next) break;
      next.answer();
      await tick();
    }
    await puller.done;
    expect(store.held(1)).toEqual([[0, 1000]]);
    expect(store.held(2)).toEqual([[50, 60]]);
    expect(puller.remainingPages).toBe(0);
    expect(puller.stats).toMatchObject({ pagesFetched: 1010, bulkGets: 5, urgentGets: 0 });
  });

  it('fetches a wanted page at once, ahead of the batches, and goes on from there', async () => {
    const link = new ManualLink();
    const store = new FetchedPages();
    const puller = new PagePuller(link, new Map([[1, [[0, 10_000]]]]), store, { batchPages: 100, inFlight: 1, urgentPages: 4 });
    puller.start();
    expect(link.pages(0)).toEqual([0, 100]);
    const wanted = puller.want(1, 5000);
    expect(link.asked[1]).toMatchObject({ urgent: true, nrPages: 4 });
    expect(link.pages(1)).toEqual([5000, 5004]);
    link.asked[1]!.answer();
    await wanted;
    expect(store.run(1, 5000, 10)).toBe(4);
    // The next batch starts where the daemon reads.
    link.asked[0]!.answer();
    await tick();
    expect(link.pages(2)).toEqual([5004, 5104]);
    // A page in flight is waited for, not asked twice; a page held already resolves at once.
    const inFlight = puller.want(1, 5050);
    expect(link.asked).toHaveLength(3);
    await puller.want(1, 5001);
    link.asked[2]!.answer();
    await inFlight;
    puller.stop();
  });

  it('pauses when too much is fetched and not taken, and goes on when the daemon takes pages', async () => {
    const link = new ManualLink();
    const store = new FetchedPages();
    const puller = new PagePuller(link, new Map([[1, [[0, 1000]]]]), store, { batchPages: 100, inFlight: 4, maxBufferedBytes: 200 * 4096 });
    puller.start();
    expect(link.asked).toHaveLength(2);
    link.asked[0]!.answer();
    link.asked[1]!.answer();
    await tick();
    expect(link.asked).toHaveLength(2);
    store.taken(1, 0, 200);
    puller.kick();
    expect(link.asked).toHaveLength(4);
    puller.stop();
  });

  it('fails done and every later want when a GET fails', async () => {
    const link = new ManualLink();
    const puller = new PagePuller(link, new Map([[1, [[0, 10]]]]), new FetchedPages());
    puller.start();
    link.asked[0]!.fail(new Error('source lost'));
    await expect(puller.done).rejects.toThrow('source lost');
    await expect(puller.want(1, 3)).rejects.toThrow('source lost');
  });
});
