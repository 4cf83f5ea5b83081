import { binding } from './load-binding';
import { checkUint8Array, type ByteArray } from './validate';

export interface FdRange {
  fd: number;
  offset: number;
  length: number;
}

/**
 * Reads scattered ranges of open files back to back into `dest` (or a new Buffer), with one pread per range in a
 * single libuv worker call: many small ranges cost one thread-pool round trip instead of one each. Rejects with
 * NativeError on a read error or when a range runs past the end of its file (EIO).
 */
export async function gatherFiles(ranges: readonly FdRange[], dest?: ByteArray): Promise<Buffer> {
  const triples = new BigUint64Array(ranges.length * 3);
  let total = 0;
  ranges.forEach((r, i) => {
    if (!Number.isInteger(r.fd) || r.fd < 0) throw new TypeError(`gatherFiles: ranges[${i}].fd must be a non-negative integer`);
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
      throw new RangeError(`gatherFiles: ranges[${i}] must have non-negative integer offset and length`);
    }
    triples[3 * i] = BigInt(r.fd);
    triples[3 * i + 1] = BigInt(r.offset);
    triples[3 * i + 2] = BigInt(r.length);
    total += r.length;
  });
  const out = dest === undefined ? Buffer.allocUnsafe(total) : Buffer.from(checkUint8Array('gatherFiles', 'dest', dest).buffer, dest.byteOffset, dest.byteLength);
  if (out.length < total) throw new RangeError(`gatherFiles: dest holds ${out.length} bytes, the ranges ${total}`);
  if (total > 0) await binding().gatherFiles(triples, out);
  return out.subarray(0, total);
}

