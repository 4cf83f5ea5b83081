import { binding } from './load-binding';
import { checkUint8Array, type ByteArray } from './validate';

export interface FileRange {
  offset: number;
  length: number;
}

/**
 * Reads scattered ranges of an open file back to back into `dest` (or a new Buffer), with one pread per range in a
 * single libuv worker call: many small ranges cost one thread-pool round trip instead of one each. Rejects with
 * NativeError on a read error or when a range runs past the end of the file (EIO).
 */
export async function gatherFile(fd: number, ranges: readonly FileRange[], dest?: ByteArray): Promise<Buffer> {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('gatherFile: fd must be a non-negative integer');
  const pairs = new BigUint64Array(ranges.length * 2);
  let total = 0;
  ranges.forEach((r, i) => {
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
      throw new RangeError(`gatherFile: ranges[${i}] must have non-negative integer offset and length`);
    }
    pairs[2 * i] = BigInt(r.offset);
    pairs[2 * i + 1] = BigInt(r.length);
    total += r.length;
  });
  const out = dest === undefined ? Buffer.allocUnsafe(total) : Buffer.from(checkUint8Array('gatherFile', 'dest', dest).buffer, dest.byteOffset, dest.byteLength);
  if (out.length < total) throw new RangeError(`gatherFile: dest holds ${out.length} bytes, the ranges ${total}`);
  if (total > 0) await binding().gatherFile(fd, pairs, out);
  return out.subarray(0, total);
}
