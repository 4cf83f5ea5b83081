/**
 * CRIU's page-server wire protocol (criu/page-xfer.c), the part a lazy restore speaks: `criu lazy-pages --page-server`
 * sends `struct page_server_iov` requests and reads answers of the same struct followed by the pages.
 *
 *   struct page_server_iov { u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id; }   little-endian, 32 bytes:
 *   cmd at 0, 4 bytes of padding (CRIU does not clear them: 0x5555 seen), nr_pages at 8, vaddr at 16, dst_id at 24
 *
 * Checked against CRIU 4.2.1 (the Debian package; page-xfer.c unchanged from v4.2 to the mirror's HEAD) with the
 * bytes of a real session (recorded/criu-lazy-session.json):
 * - PS_IOV_GET (7): dst_id is the task's pid in the images (its pid namespace pid), nr_pages what the daemon wants.
 * - The answer: cmd = PS_IOV_ADD_F | PE_PRESENT << 16 (0x40006), nr_pages <= the request's (fewer is allowed: the
 *   daemon copies those and asks again for the rest), the request's vaddr and dst_id, then nr_pages * 4096 bytes.
 *   Answers must come in request order: the daemon matches them first-in first-out, and fails ("Out of order read
 *   completed") when an answer names another task than the one its oldest request was for.
 * - An answer with nr_pages = 0 is not allowed (CRIU's own server ends the session instead).
 * - PS_IOV_FORCE_CLOSE (0x1024, sent over --ps-socket; PS_IOV_CLOSE 0x1023 over TCP) ends the session: answered with
 *   a 4-byte status, 0 for success. The daemon sends it when it is done, whether it succeeded or not.
 */
export const PS_IOV_SIZE = 32;
export const PAGE_SIZE = 4096;

export const PS_IOV_ADD = 1;
export const PS_IOV_HOLE = 2;
export const PS_IOV_OPEN = 3;
export const PS_IOV_OPEN2 = 4;
export const PS_IOV_PARENT = 5;
export const PS_IOV_ADD_F = 6;
export const PS_IOV_GET = 7;
export const PS_IOV_CLOSE = 0x1023;
export const PS_IOV_FORCE_CLOSE = 0x1024;

/** pagemap flags (images/pagemap.proto: PE_PARENT, PE_LAZY, PE_PRESENT) as carried in cmd's upper 16 bits. */
export const PE_PRESENT = 1 << 2;

const PS_CMD_BITS = 16;
const PS_CMD_MASK = (1 << PS_CMD_BITS) - 1;

export interface PageServerIov {
  /** The command (lower 16 bits of cmd). */
  cmd: number;
  /** The flags (upper 16 bits of cmd). */
  flags: number;
  nrPages: number;
  vaddr: bigint;
  dstId: bigint;
}

export type PsRequest =
  | { kind: 'get'; pid: number; vaddr: bigint; nrPages: number }
  | { kind: 'close'; force: boolean }
  | { kind: 'other'; iov: PageServerIov };

export function decodeIov(bytes: Uint8Array): PageServerIov {
  if (bytes.length < PS_IOV_SIZE) throw new RangeError(`page_server_iov: ${bytes.length} bytes, need ${PS_IOV_SIZE}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, PS_IOV_SIZE);
  const cmd = view.getUint32(0, true);
  const nrPages = view.getBigUint64(8, true);
  if (nrPages > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`page_server_iov: nr_pages ${nrPages} out of range`);
  return { cmd: cmd & PS_CMD_MASK, flags: cmd >>> PS_CMD_BITS, nrPages: Number(nrPages), vaddr: view.getBigUint64(16, true), dstId: view.getBigUint64(24, true) };
}

export function encodeIov(iov: PageServerIov, into: Buffer = Buffer.alloc(PS_IOV_SIZE), offset = 0): Buffer {
  const cmd = ((iov.flags << PS_CMD_BITS) | iov.cmd) >>> 0;
  into.writeUInt32LE(cmd, offset);
  into.writeUInt32LE(0, offset + 4);
  into.writeBigUInt64LE(BigInt(iov.nrPages), offset + 8);
  into.writeBigUInt64LE(iov.vaddr, offset + 16);
  into.writeBigUInt64LE(iov.dstId, offset + 24);
  return into;
}

/** What the lazy-pages daemon asks; other commands (a dump's, not a lazy restore's) come back as 'other'. */
export function decodeRequest(bytes: Uint8Array): PsRequest {
  const iov = decodeIov(bytes);
  if (iov.cmd === PS_IOV_GET) {
    if (iov.dstId > 0x7fffffffn || iov.dstId === 0n) throw new RangeError(`PS_IOV_GET: dst_id ${iov.dstId} is not a pid`);
    if (iov.nrPages === 0) throw new RangeError('PS_IOV_GET: nr_pages is 0');
    if (iov.vaddr % BigInt(PAGE_SIZE) !== 0n) throw new RangeError(`PS_IOV_GET: vaddr 0x${iov.vaddr.toString(16)} is not page-aligned`);
    return { kind: 'get', pid: Number(iov.dstId), vaddr: iov.vaddr, nrPages: iov.nrPages };
  }
  if (iov.cmd === PS_IOV_CLOSE || iov.cmd === PS_IOV_FORCE_CLOSE) return { kind: 'close', force: iov.cmd === PS_IOV_FORCE_CLOSE };
  return { kind: 'other', iov };
}

export function encodeGetRequest(pid: number, vaddr: bigint, nrPages: number): Buffer {
  return encodeIov({ cmd: PS_IOV_GET, flags: 0, nrPages, vaddr, dstId: BigInt(pid) });
}

/** The header of the answer to a GET: nrPages (1..requested) pages at vaddr of task pid follow it. */
export function encodePagesHeader(pid: number, vaddr: bigint, nrPages: number): Buffer {
  if (!Number.isInteger(nrPages) || nrPages < 1) throw new RangeError('an answer carries at least one page');
  return encodeIov({ cmd: PS_IOV_ADD_F, flags: PE_PRESENT, nrPages, vaddr, dstId: BigInt(pid) });
}

/** The bytes of a whole answer to a GET: header + pages. */
export function pagesAnswerBytes(nrPages: number): number {
  return PS_IOV_SIZE + nrPages * PAGE_SIZE;
}

/** The answer to PS_IOV_CLOSE / PS_IOV_FORCE_CLOSE. */
export function encodeCloseStatus(status = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(status, 0);
  return b;
}
