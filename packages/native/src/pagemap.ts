import { binding } from './load-binding';
import type { MemoryRange } from './memory-regions';
import type { NativeError } from './native-error';
import { PAGE_SIZE } from './page-hash';
import { checkAddress, checkLength, checkOptions, checkPid } from './validate';

/** Bits of Pagemap.flags. */
export const PageFlag = {
  /** In RAM (pagemap bit 63). */
  PRESENT: 1,
  /** In swap (bit 62): not present, yet has content; process_vm_readv brings it back. */
  SWAPPED: 2,
  /** A file page or shared anonymous memory (bit 61). For absent pages of a file mapping the scan method sets it
   * and the read method does not. */
  FILE_OR_SHARED_ANON: 4,
  /** Mapped by this process only (bit 56). Only the read method reports it. */
  EXCLUSIVE: 8,
  /** Written since soft-dirty bits were last cleared (bit 55); never set on kernels without CONFIG_MEM_SOFT_DIRTY. */
  SOFT_DIRTY: 16,
} as const;

export type PagemapMethod = 'scan' | 'read';

export interface PagemapOptions {
  /**
   * 'scan': the PAGEMAP_SCAN ioctl (Linux >= 6.7), fast on large sparse ranges, no EXCLUSIVE bit.
   * 'read': pread of /proc/PID/pagemap, any kernel, every bit. 'auto' (default): scan where the kernel has it.
   */
  method?: 'auto' | PagemapMethod;
}

export interface Pagemap {
  /** Address of page 0. */
  address: bigint;
  /** One byte of PageFlag bits per page. */
  flags: Uint8Array;
  /** How the flags were obtained. */
  method: PagemapMethod;
  /** The PageFlag bits this method reports: a bit outside `known` is 0 for lack of information. */
  known: number;
}

export interface PresentRangesOptions extends PagemapOptions {
  /** Count swapped-out pages as present, default true: they have content, and reading them swaps them back in. */
  includeSwapped?: boolean;
}

// PAGEMAP_SCAN categories (include/uapi/linux/fs.h).
const PAGE_IS_FILE = 1 << 2;
const PAGE_IS_PRESENT = 1 << 3;
const PAGE_IS_SWAPPED = 1 << 4;
const PAGE_IS_SOFT_DIRTY = 1 << 7;

const READ_CHUNK_PAGES = 1 << 16;
// Flags are a byte per page; past this (8 TiB of address space) the caller should split the range.
const MAX_PAGES = 2 ** 31;

// What this kernel's PAGEMAP_SCAN accepts, learned on first use: 6.7 lacks PAGE_IS_SOFT_DIRTY, older kernels the
// ioctl (ENOTTY).
let scanSoftDirty = true;
let scanAvailable = true;

/**
 * Per-page flags of process `pid` for the page-aligned `range`, from /proc/PID/pagemap, off the main thread.
 * Pages outside any mapping read as 0. Rejects with NativeError ENOENT (syscall `open`) when there is no such
 * process, EACCES/EPERM without ptrace access to it.
 */
export async function readPagemap(pid: number, range: MemoryRange, options?: PagemapOptions): Promise<Pagemap> {
  const fn = 'readPagemap';
  checkPid(fn, pid);
  const { address, pages } = checkPageRange(fn, range);
  const { method = 'auto' } = checkOptions<PagemapOptions>(fn, options, ['method']);
  if (method !== 'auto' && method !== 'scan' && method !== 'read') {
    throw new RangeError(`${fn}: options.method must be 'auto', 'scan' or 'read', got ${String(method)}`);
  }
  if (method === 'scan' || (method === 'auto' && scanAvailable)) {
    try {
      return await scanPagemap(pid, address, pages);
    } catch (error) {
      const code = (error as NativeError).code;
      if (method === 'scan' || (code !== 'ENOTTY' && code !== 'EINVAL')) throw error;
      if (code === 'ENOTTY') scanAvailable = false;
    }
  }
  return readPagemapEntries(pid, address, pages);
}

/**
 * The parts of `range` whose pages have content in process `pid` (present, and by default swapped), as
 * page-aligned ranges in address order: what a reader of the process's memory needs to read, skipping pages never
 * touched.
 */
export async function findPresentRanges(
  pid: number,
  range: MemoryRange,
  options?: PresentRangesOptions,
): Promise<MemoryRange[]> {
  const { includeSwapped = true, ...pagemapOptions } = checkOptions<PresentRangesOptions>(
    'findPresentRanges',
    options,
    ['method', 'includeSwapped'],
  );
  if (typeof includeSwapped !== 'boolean') throw new TypeError('findPresentRanges: includeSwapped must be a boolean');
  const map = await readPagemap(pid, range, pagemapOptions);
  const wanted = PageFlag.PRESENT | (includeSwapped ? PageFlag.SWAPPED : 0);
  const ranges: MemoryRange[] = [];
  const { flags } = map;
  for (let i = 0; i < flags.length; ) {
    if ((flags[i]! & wanted) === 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < flags.length && (flags[j]! & wanted) !== 0) j++;
    ranges.push({ address: map.address + BigInt(i * PAGE_SIZE), length: (j - i) * PAGE_SIZE });
    i = j;
  }
  return ranges;
}

function checkPageRange(fn: string, range: MemoryRange): { address: bigint; pages: number } {
  if (range === null || typeof range !== 'object') throw new TypeError(`${fn}: range must be { address, length }`);
  const address = checkAddress(fn, 'range.address', range.address);
  const length = checkLength(fn, 'range.length', range.length);
  if (address % BigInt(PAGE_SIZE) !== 0n || length % PAGE_SIZE !== 0) {
    throw new RangeError(`${fn}: range must be page-aligned (${PAGE_SIZE}), got 0x${address.toString(16)}+${length}`);
  }
  if (address + BigInt(length) > 1n << 64n) throw new RangeError(`${fn}: range wraps around the address space`);
  const pages = length / PAGE_SIZE;
  if (pages > MAX_PAGES) throw new RangeError(`${fn}: range spans more than ${MAX_PAGES} pages; split it`);
  return { address, pages };
}

async function scanPagemap(pid: number, address: bigint, pages: number): Promise<Pagemap> {
  const end = address + BigInt(pages * PAGE_SIZE);
  const base = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE;
  let regions: BigUint64Array;
  try {
    regions = await binding().pagemapScan(pid, address, end, base | (scanSoftDirty ? PAGE_IS_SOFT_DIRTY : 0));
  } catch (error) {
    if (!scanSoftDirty || (error as NativeError).code !== 'EINVAL') throw error;
    regions = await binding().pagemapScan(pid, address, end, base);
    scanSoftDirty = false;
  }
  const flags = new Uint8Array(pages);
  for (let i = 0; i < regions.length; i += 3) {
    const categories = Number(regions[i + 2]!);
    const value =
      (categories & PAGE_IS_PRESENT ? PageFlag.PRESENT : 0) |
      (categories & PAGE_IS_SWAPPED ? PageFlag.SWAPPED : 0) |
      (categories & PAGE_IS_FILE ? PageFlag.FILE_OR_SHARED_ANON : 0) |
      (categories & PAGE_IS_SOFT_DIRTY ? PageFlag.SOFT_DIRTY : 0);
    const first = Number((regions[i]! - address) / BigInt(PAGE_SIZE));
    const last = Number((regions[i + 1]! - address) / BigInt(PAGE_SIZE));
    flags.fill(value, first, last);
  }
  const known =
    PageFlag.PRESENT | PageFlag.SWAPPED | PageFlag.FILE_OR_SHARED_ANON | (scanSoftDirty ? PageFlag.SOFT_DIRTY : 0);
  return { address, flags, method: 'scan', known };
}

async function readPagemapEntries(pid: number, address: bigint, pages: number): Promise<Pagemap> {
  const flags = new Uint8Array(pages);
  const entries = new BigUint64Array(Math.min(pages, READ_CHUNK_PAGES));
  // The flag bits all live in the high 32 bits of each little-endian entry: decode through a Uint32Array view
  // instead of per-page BigInt arithmetic.
  const words = new Uint32Array(entries.buffer);
  const firstPage = address / BigInt(PAGE_SIZE);
  for (let done = 0; done < pages; done += entries.length) {
    const count = Math.min(entries.length, pages - done);
    const chunk = count === entries.length ? entries : entries.subarray(0, count);
    await binding().pagemapRead(pid, firstPage + BigInt(done), chunk);
    for (let i = 0; i < count; i++) {
      const high = words[2 * i + 1]!;
      flags[done + i] =
        (high & (1 << 31) ? PageFlag.PRESENT : 0) |
        (high & (1 << 30) ? PageFlag.SWAPPED : 0) |
        (high & (1 << 29) ? PageFlag.FILE_OR_SHARED_ANON : 0) |
        (high & (1 << 24) ? PageFlag.EXCLUSIVE : 0) |
        (high & (1 << 23) ? PageFlag.SOFT_DIRTY : 0);
    }
  }
  const known =
    PageFlag.PRESENT | PageFlag.SWAPPED | PageFlag.FILE_OR_SHARED_ANON | PageFlag.EXCLUSIVE | PageFlag.SOFT_DIRTY;
  return { address, flags, method: 'read', known };
}
