import { readFile } from 'node:fs/promises';

import { NativeError } from './native-error';
import { checkPid } from './validate';

/** A span of another process's address space. */
export interface MemoryRange {
  address: bigint;
  /** Bytes. */
  length: number;
}

/** One line of /proc/PID/maps. */
export interface MemoryRegion {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** `end - start` in bytes. */
  length: number;
  /** As the kernel prints it, e.g. `rw-p`. */
  perms: string;
  readable: boolean;
  writable: boolean;
  executable: boolean;
  /** `s` (MAP_SHARED) rather than `p`. */
  shared: boolean;
  /** Offset into the mapped file. */
  offset: bigint;
  /** `major:minor` in hex, as printed. */
  dev: string;
  inode: number;
  /** File path, `[heap]`, `[stack]`, `[vdso]`..., or '' for anonymous memory. May end in ` (deleted)`. */
  pathname: string;
}

// start-end perms offset dev inode [pathname]; the pathname is everything after the padding and may hold spaces.
const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][sp]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/;

/** Parses the text of /proc/PID/maps. Throws a SyntaxError on a line it does not understand. */
export function parseMaps(text: string): MemoryRegion[] {
  const regions: MemoryRegion[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = LINE.exec(line);
    if (m === null) throw new SyntaxError(`parseMaps: unexpected line ${JSON.stringify(line)}`);
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    const perms = m[3]!;
    regions.push({
      start,
      end,
      length: Number(end - start),
      perms,
      readable: perms[0] === 'r',
      writable: perms[1] === 'w',
      executable: perms[2] === 'x',
      shared: perms[3] === 's',
      offset: BigInt(`0x${m[4]}`),
      dev: m[5]!,
      inode: Number(m[6]),
      pathname: m[7] ?? '',
    });
  }
  return regions;
}

/**
 * The memory regions of process `pid`, from /proc/PID/maps, in address order. A snapshot: the process may map
 * and unmap while the caller works with it (readMemory reports what it then finds unreadable).
 * Rejects with NativeError ENOENT (syscall `open`) when there is no such process.
 */
export async function listMemoryRegions(pid: number): Promise<MemoryRegion[]> {
  checkPid('listMemoryRegions', pid);
  const file = `/proc/${pid}/maps`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw NativeError.fromNodeError(error, 'open', file);
  }
  return parseMaps(text);
}
