import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { errnoName } from './native-error';
import { checkAddress, checkUint8Array, type ByteArray } from './validate';

/**
 * One message of a userfaultfd (struct uffd_msg, 32 bytes). `fork` carries the child's new userfaultfd, which the
 * kernel installed in this process when the message was read: the caller owns that handle.
 */
export type UffdMessage =
  | { event: 'pagefault'; address: bigint; write: boolean }
  | { event: 'fork'; uffd: FdHandle }
  | { event: 'remap'; from: bigint; to: bigint; len: bigint }
  | { event: 'remove' | 'unmap'; start: bigint; end: bigint }
  | { event: 'unknown'; code: number };

/** The outcome of a resolving ioctl: bytes done, and the errno when it stopped short (EEXIST, ENOENT, ESRCH, ...). */
export interface UffdResult {
  bytes: number;
  errno?: string;
}

export const UFFD_MSG_SIZE = 32;
const EVENTS: Record<number, 'pagefault' | 'fork' | 'remap' | 'remove' | 'unmap'> = {
  0x12: 'pagefault',
  0x13: 'fork',
  0x14: 'remap',
  0x15: 'remove',
  0x16: 'unmap',
};
const FAULT_WRITE = 1n;

/** Decodes raw uffd_msg records; `adopt` wraps a fork message's fd number (the facade makes it an FdHandle). */
export function decodeUffdMessages<F>(raw: Buffer, adopt: (fd: number) => F): (Exclude<UffdMessage, { event: 'fork' }> | { event: 'fork'; uffd: F })[] {
  if (raw.length % UFFD_MSG_SIZE !== 0) throw new RangeError(`decodeUffdMessages: ${raw.length} bytes is not whole messages`);
  const out: (Exclude<UffdMessage, { event: 'fork' }> | { event: 'fork'; uffd: F })[] = [];
  for (let at = 0; at < raw.length; at += UFFD_MSG_SIZE) {
    const code = raw.readUInt8(at);
    const event = EVENTS[code];
    const u64 = (offset: number) => raw.readBigUInt64LE(at + offset);
    switch (event) {
      case 'pagefault':
        out.push({ event, address: u64(16), write: (u64(8) & FAULT_WRITE) !== 0n });
        break;
      case 'fork':
        out.push({ event, uffd: adopt(raw.readUInt32LE(at + 8)) });
        break;
      case 'remap':
        out.push({ event, from: u64(8), to: u64(16), len: u64(24) });
        break;
      case 'remove':
      case 'unmap':
        out.push({ event, start: u64(8), end: u64(16) });
        break;
      default:
        out.push({ event: 'unknown', code });
    }
  }
  return out;
}

function result(raw: number): UffdResult {
  return raw >= 0 ? { bytes: raw } : { bytes: 0, errno: errnoName(-raw) };
}

/**
 * A userfaultfd of another process (received from it, or from a fork message), owned: close() closes it. Reads never
 * block; wait for messages with pollUffds(). The resolving calls report EEXIST/ENOENT/ESRCH... in the result rather
 * than throwing: to a fault handler they are outcomes, not failures.
 */
export class Userfaultfd {
  constructor(readonly handle: FdHandle) {
    if (!(handle instanceof FdHandle)) throw new TypeError('Userfaultfd: handle must be an FdHandle');
  }

  /** The queued messages ([] when none), or null once the last process behind it is gone. */
  read(): UffdMessage[] | null {
    const raw = binding().uffdRead(this.handle.fd);
    if (raw === null) return null;
    return decodeUffdMessages(raw, (fd) => new FdHandle(fd));
  }

  /** UFFDIO_COPY of src to dst (page-aligned, within one registered range); wakes the faulting tasks unless told. */
  copy(dst: bigint, src: ByteArray, options: { dontWake?: boolean } = {}): UffdResult {
    checkAddress('Userfaultfd.copy', 'dst', dst);
    checkUint8Array('Userfaultfd.copy', 'src', src);
    return result(binding().uffdCopy(this.handle.fd, dst, src, options.dontWake === true));
  }

  /** UFFDIO_ZEROPAGE over [start, start + len). */
  zeropage(start: bigint, len: bigint): UffdResult {
    return result(binding().uffdZeropage(this.handle.fd, checkAddress('Userfaultfd.zeropage', 'start', start), checkAddress('Userfaultfd.zeropage', 'len', len)));
  }

  /** UFFDIO_WAKE: tasks waiting on [start, start + len) retry their fault. */
  wake(start: bigint, len: bigint): UffdResult {
    return result(binding().uffdRange(this.handle.fd, 0, checkAddress('Userfaultfd.wake', 'start', start), checkAddress('Userfaultfd.wake', 'len', len)));
  }

  /** UFFDIO_UNREGISTER: faults in [start, start + len) are the kernel's own again. */
  unregister(start: bigint, len: bigint): UffdResult {
    return result(binding().uffdRange(this.handle.fd, 1, checkAddress('Userfaultfd.unregister', 'start', start), checkAddress('Userfaultfd.unregister', 'len', len)));
  }

  close(): void {
    this.handle.close();
  }
}

/** Waits (on a pool thread) up to timeoutMs for any of `uffds` to have a message; resolves with those that do. */
export async function pollUffds(uffds: readonly Userfaultfd[], timeoutMs: number): Promise<Userfaultfd[]> {
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1) throw new RangeError(`pollUffds: timeoutMs must be an integer >= -1`);
  const open = uffds.filter((u) => !u.handle.closed);
  if (open.length === 0) return [];
  const ready = new Set(await binding().uffdPoll(open.map((u) => u.handle.fd), timeoutMs));
  return open.filter((u) => !u.handle.closed && ready.has(u.handle.fd));
}
