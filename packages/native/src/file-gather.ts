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
  const { triples, total } = encode('gatherFiles', ranges);
  const out = dest === undefined ? Buffer.allocUnsafe(total) : Buffer.from(checkUint8Array('gatherFiles', 'dest', dest).buffer, dest.byteOffset, dest.byteLength);
  if (out.length < total) throw new RangeError(`gatherFiles: dest holds ${out.length} bytes, the ranges ${total}`);
  if (total > 0) await binding().gatherFiles(triples, out);
  return out.subarray(0, total);
}


/**
 * Writes `src` to scattered ranges of open files: its first bytes to the first range, and so on, with one pwrite per
 * range in a single libuv worker call. The caller must not change `src` until the promise settles.
 */
export async function scatterFiles(ranges: readonly FdRange[], src: ByteArray): Promise<void> {
  const { triples, total } = encode('scatterFiles', ranges);
  checkUint8Array('scatterFiles', 'src', src);
  if (src.byteLength < total) throw new RangeError(`scatterFiles: src holds ${src.byteLength} bytes, the ranges ${total}`);
  if (total > 0) await binding().scatterFiles(triples, src);
}

function encode(fn: string, ranges: readonly FdRange[]): { triples: BigUint64Array; total: number } {
  const triples = new BigUint64Array(ranges.length * 3);
  let total = 0;
  ranges.forEach((r, i) => {
    if (!Number.isInteger(r.fd) || r.fd < 0) throw new TypeError(`${fn}: ranges[${i}].fd must be a non-negative integer`);
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
      throw new RangeError(`${fn}: ranges[${i}] must have non-negative integer offset and length`);
    }
    triples[3 * i] = BigInt(r.fd);
    triples[3 * i + 1] = BigInt(r.offset);
    triples[3 * i + 2] = BigInt(r.length);
    total += r.length;
  });
  return { triples, total };
}
