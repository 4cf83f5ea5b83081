import { FerryError } from '@ferry/core';
import { duplexPair } from '../testing/duplex-pair';
import type { GetRequest } from './link-frames';
import { LinkRequester, type LinkEvent } from './link-requester';
import { serveLink, type LinkResponderOptions } from './link-responder';

const PAGE = 4096;
/** Page content that says where it came from: pid and address at the start of every page. */
function pagesOf(get: GetRequest): Buffer {
  const b = Buffer.alloc(get.nrPages * PAGE, 0x5a);
  for (let i = 0; i < get.nrPages; i++) {
    b.writeUInt32LE(get.pid, i * PAGE);
    b.writeBigUInt64LE(get.vaddr + BigInt(i * PAGE), i * PAGE + 8);
  }
  return b;
}

function responder(extra: Partial<LinkResponderOptions> = {}): LinkResponderOptions {
  return { session: 'm1', readPages: async (get) => pagesOf(get), ...extra };
}

describe('the page link', () => {
  it('answers GETs with the pages asked for', async () => {
    const [relayEnd, sourceEnd] = duplexPair();
    const requester = new LinkRequester({ session: 'm1' });
    requester.attach(relayEnd);
    const served = serveLink(sourceEnd, responder());
    const gets = [1, 16, 1024].map((n, i) => ({ pid: 3, vaddr: BigInt(0x10000 + i * 0x1000000), nrPages: n, urgent: n === 1 }));
    const answers = await Promise.all(gets.map((g) => requester.get(g)));
    answers.forEach((a, i) => expect(a.equals(pagesOf(gets[i]!))).toBe(true));
    await requester.finish();
    expect(await served).toEqual({ outcome: 'done' });
    requester.close();
  });

  it('keeps unanswered GETs across a broken connection and sends them again on the next one, once each', async () => {
    const events: LinkEvent[] = [];
    const requester = new LinkRequester({ session: 'm1', onEvent: (e) => events.push(e) });
    // The first source reads slowly: the link breaks with answers outstanding.
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    const [r1, s1] = duplexPair();
    requester.attach(r1);
    const first = serveLink(s1, responder({ readPages: async (get) => (get.vaddr === 0x1000n ? pagesOf(get) : stalled.then(() => pagesOf(get))) }));
    const gets = Array.from({ length: 6 }, (_, i) => ({ pid: 1, vaddr: BigInt((i + 1) * PAGE), nrPages: 4, urgent: false }));
    const answers = gets.map((g) => requester.get(g));
    expect((await answers[0]!).equals(pagesOf(gets[0]!))).toBe(true);
    r1.destroy();
    expect(await first).toMatchObject({ outcome: 'closed' });
    release();
    expect(events.at(-1)).toMatchObject({ type: 'link-down', outstanding: 5 });

    let reads = 0;
    const [r2, s2] = duplexPair();
    requester.attach(r2);
    const second = serveLink(s2, responder({ readPages: async (get) => (reads++, pagesOf(get)) }));
    const all = await Promise.all(answers);
    all.forEach((a, i) => expect(a.equals(pagesOf(gets[i]!))).toBe(true));
    expect(reads).toBe(5);
    expect(events.find((e) => e.type === 'link-up' && e.resent === 5)).toBeDefined();
    await requester.finish();
    expect(await second).toEqual({ outcome: 'done' });
  });

  it('refuses a source of another move and keeps waiting for the right one', async () => {
    const requester = new LinkRequester({ session: 'm1' });
    const [r1, s1] = duplexPair();
    requester.attach(r1);
    const wrong = serveLink(s1, { session: 'other', readPages: async (g) => pagesOf(g) });
    const answer = requester.get({ pid: 1, vaddr: 0x1000n, nrPages: 1, urgent: true });
    expect(await wrong).toMatchObject({ outcome: 'closed' });
    expect(requester.connected).toBe(false);
    const [r2, s2] = duplexPair();
    requester.attach(r2);
    void serveLink(s2, responder());
    expect((await answer).length).toBe(PAGE);
    requester.close();
  });

  it("fails a GET with the source's error code when the source cannot read its memory", async () => {
    const requester = new LinkRequester({ session: 'm1' });
    const [r, s] = duplexPair();
    requester.attach(r);
    void serveLink(s, responder({ readPages: async () => {
      throw new FerryError('ERR_POSTCOPY_SOURCE_LOST', 'task 1 is gone');
    } }));
    await expect(requester.get({ pid: 1, vaddr: 0n, nrPages: 1, urgent: false })).rejects.toMatchObject({ code: 'ERR_POSTCOPY_SOURCE_LOST' });
    requester.close();
  });

  it('sends DONE again after a cut until the source has heard it', async () => {
    const requester = new LinkRequester({ session: 'm1' });
    const [r1, s1] = duplexPair();
    // A source that never answers DONE: the stream breaks first.
    s1.on('data', () => undefined);
    requester.attach(r1);
    s1.write(Buffer.concat((await import('./link-frames')).encodeJson(1, 0, { session: 'm1', role: 'source' })));
    await requester.whenConnected();
    const finished = requester.finish();
    s1.destroy();
    const [r2, s2] = duplexPair();
    requester.attach(r2);
    expect(await serveLink(s2, responder())).toEqual({ outcome: 'done' });
    await finished;
  });

  it('close() rejects whatever is pending', async () => {
    const requester = new LinkRequester({ session: 'm1' });
    const pending = requester.get({ pid: 1, vaddr: 0n, nrPages: 1, urgent: false });
    requester.close(new FerryError('ERR_ABORTED', 'rolled back'));
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(requester.get({ pid: 1, vaddr: 0n, nrPages: 1, urgent: false })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
