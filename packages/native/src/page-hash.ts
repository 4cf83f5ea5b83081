import { availableParallelism } from 'node:os';

import { binding } from './load-binding';
import { checkConcurrency, checkOptions, checkUint8Array, type ByteArray } from './validate';

/** The page size of every page-wise API here (x86-64, and what CRIU images use). */
export const PAGE_SIZE = 4096;

// Below this a worker's queueing costs more than the hashing it saves (~1 MiB hashes in ~0.1 ms).
const MIN_PAGES_PER_WORKER = 256;

export interface HashPagesOptions {
  /** Also report all-zero pages, in the same pass (nearly free: only pages hashing like a zero page are checked). */
  zero?: boolean;
  /** Parallel workers on libuv's thread pool; default the number of CPUs. */
  concurrency?: number;
}

export interface PageHashes {
  /** XXH3-64 of each 4 KiB page, in order. */
  hashes: BigUint64Array;
  /** zero[i] is 1 when page i is all zero bytes, else 0; null unless `zero: true` was asked for. */
  zero: Uint8Array | null;
}

/**
 * Hashes `data` as consecutive 4 KiB pages with XXH3-64 (the same hash on every host and thread count) on libuv
 * worker threads, splitting large buffers across `concurrency` workers. `data.byteLength` must be a multiple of
 * PAGE_SIZE. The caller must not modify, transfer or detach `data` until the promise settles.
 */
export function hashPages(
  data: ByteArray,
  options: HashPagesOptions & { zero: true },
): Promise<PageHashes & { zero: Uint8Array }>;
export function hashPages(data: ByteArray, options?: HashPagesOptions): Promise<PageHashes>;
export async function hashPages(data: ByteArray, options?: HashPagesOptions): Promise<PageHashes> {
  const opts = checkOptions<HashPagesOptions>('hashPages', options, ['zero', 'concurrency']);
  if (opts.zero !== undefined && typeof opts.zero !== 'boolean') {
    throw new TypeError('hashPages: options.zero must be a boolean');
  }
  const pages = checkPages('hashPages', data);
  const hashes = new BigUint64Array(pages);
  const zero = opts.zero === true ? new Uint8Array(pages) : null;
  await runSplit('hashPages', data, pages, opts.concurrency, hashes, zero);
  return { hashes, zero };
}

/**
 * Finds the all-zero 4 KiB pages of `data`: result[i] is 1 when page i is all zero. Stops reading a page at its
 * first non-zero 64 bytes, so non-zero data costs little. Same rules as hashPages for `data`.
 */
export async function findZeroPages(data: ByteArray, options?: { concurrency?: number }): Promise<Uint8Array> {
  const opts = checkOptions<{ concurrency?: number }>('findZeroPages', options, ['concurrency']);
  const pages = checkPages('findZeroPages', data);
  const zero = new Uint8Array(pages);
  await runSplit('findZeroPages', data, pages, opts.concurrency, null, zero);
  return zero;
}

function checkPages(fn: string, data: ByteArray): number {
  checkUint8Array(fn, 'data', data);
  if (data.byteLength % PAGE_SIZE !== 0) {
    throw new RangeError(`${fn}: data.byteLength must be a multiple of ${PAGE_SIZE}, got ${data.byteLength}`);
  }
  return data.byteLength / PAGE_SIZE;
}

async function runSplit(
  fn: string,
  data: ByteArray,
  pages: number,
  concurrency: number | undefined,
  hashes: BigUint64Array | null,
  zero: Uint8Array | null,
): Promise<void> {
  const workers = Math.max(
    1,
    Math.min(checkConcurrency(fn, concurrency ?? availableParallelism()), Math.floor(pages / MIN_PAGES_PER_WORKER)),
  );
  const perWorker = Math.ceil(pages / workers);
  const jobs: Promise<void>[] = [];
  for (let first = 0; first < pages; first += perWorker) {
    jobs.push(binding().hashPages(data, first, Math.min(perWorker, pages - first), hashes, zero));
  }
  await Promise.all(jobs);
}

