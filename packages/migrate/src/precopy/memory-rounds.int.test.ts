/**
 * Rounds against a real process (the workload fixture, its memory rewritten while it runs): after each round taken
 * while it is stopped, the destination's copy (the records applied to a page map) equals its memory page for page,
 * and a round of an unchanged process sends nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PAGE_SIZE, presentPrivateRanges, readMemory } from '@ferry/core';
import { buildFixture, removeTestDir, waitForCounter, workloadArgs } from '@ferry/core/testing';
import { PageRecordDecoder, RecordKind } from './page-records';
import { SentPages, sendRound } from './memory-rounds';

jest.setTimeout(60_000);

let dir: string;
let child: ChildProcess | undefined;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-rounds-int-'))));
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
  removeTestDir(dir);
});

/** The destination's side: every page the records carried, by address. */
function destination() {
  const pages = new Map<bigint, Buffer>();
  const decoder = new PageRecordDecoder();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      decoder.push(chunk, (r) => {
        for (let i = 0; i < r.pages; i++) {
          const page = r.kind === RecordKind.DATA ? r.data!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE) : Buffer.alloc(PAGE_SIZE);
          pages.set(r.vaddr + BigInt(i * PAGE_SIZE), page);
        }
      });
      done();
    },
  });
  return { pages, sink };
}

async function expectMirrored(pid: number, pages: Map<bigint, Buffer>): Promise<number> {
  const ranges = await presentPrivateRanges(pid);
  const read = await readMemory(pid, ranges);
  let at = 0;
  let checked = 0;
  for (const r of ranges) {
    for (let off = 0; off < r.length; off += PAGE_SIZE, at += PAGE_SIZE) {
      const held = pages.get(r.address + BigInt(off));
      if (!held || !held.equals(read.data.subarray(at, at + PAGE_SIZE))) throw new Error(`page 0x${(r.address + BigInt(off)).toString(16)} differs`);
      checked++;
    }
  }
  return checked;
}

test('each round leaves the destination holding exactly the stopped process memory; an unchanged one sends nothing', async () => {
  const stateFile = join(dir, 'state');
  child = spawn(buildFixture('workload'), workloadArgs({ stateFile, memMib: 24, dirtyPagesPerSec: 3000 }), { stdio: 'ignore' });
  const pid = child.pid!;
  await waitForCounter(stateFile, 2);
  const sent = new SentPages();
  const dst = destination();

  const first = await sendRound(pid, sent, dst.sink); // running: whatever it reads is fine
  expect(first.pages).toBeGreaterThanOrEqual((24 << 20) / PAGE_SIZE);

  for (let round = 0; round < 3; round++) {
    await new Promise((r) => setTimeout(r, 300)); // it rewrites ~900 pages meanwhile
    child.kill('SIGSTOP');
    const stats = await sendRound(pid, sent, dst.sink);
    expect(stats.pages).toBeGreaterThan(0);
    expect(stats.pages).toBeLessThan(stats.scannedPages / 2);
    expect(await expectMirrored(pid, dst.pages)).toBe(stats.scannedPages);
    const again = await sendRound(pid, sent, dst.sink);
    expect(again).toMatchObject({ pages: 0, bytes: 0, scannedPages: stats.scannedPages });
    child.kill('SIGCONT');
  }
});

test('page data goes out as slices of the read buffers: a buffer is read into again only once the sink has taken them', async () => {
  const stateFile = join(dir, 'state');
  child = spawn(buildFixture('workload'), workloadArgs({ stateFile, memMib: 16, dirtyPagesPerSec: 3000 }), { stdio: 'ignore' });
  const pid = child.pid!;
  await waitForCounter(stateFile, 2);
  child.kill('SIGSTOP');
  // Like an SSH channel with a full window: each chunk is copied (into its packets) only a while after it was
  // written, and only then called back. A buffer refilled before that would show in the copies.
  const copies: Buffer[] = [];
  const slow = new Writable({
    highWaterMark: 64 << 20, // writes are queued without pushing back: only the callbacks say when a chunk is taken
    write(chunk: Buffer, _enc, done) {
      setTimeout(() => {
        copies.push(Buffer.from(chunk));
        done();
      }, 1);
    },
  });
  const stats = await sendRound(pid, new SentPages(), slow, { batchBytes: 2 << 20 }); // 8+ batches through two buffers, runs of 1-2 MiB sent as slices
  expect(stats.pages).toBe(stats.scannedPages);
  await new Promise<void>((resolve) => slow.end(resolve)); // what the round owned (joined records) may still be queued
  const dst = destination();
  for (const c of copies) dst.sink.write(c);
  expect(await expectMirrored(pid, dst.pages)).toBe(stats.scannedPages);
});
