/**
 * The byte stream of one pre-copy round, source → destination agent: records of consecutive pages of one task.
 *
 *   u32 kind (1 = data follows, 2 = all-zero pages, no data) | u32 task (namespace pid) | u64 vaddr | u32 pages |
 *   u32 reserved (0) | pages × 4096 bytes when kind = 1
 *
 * Little-endian. Zero pages travel as a header only: freshly touched memory is often zero.
 */
import { FerryError, PAGE_SIZE } from '@ferry/core';

export const RECORD_HEADER_BYTES = 24;
export const RecordKind = { DATA: 1, ZERO: 2 } as const;
// One record never spans more than this (a bound the receiver can trust before allocating).
export const MAX_RECORD_PAGES = 1 << 16;

export interface PageRecord {
  kind: 1 | 2;
  task: number;
  vaddr: bigint;
  pages: number;
  /** kind DATA: pages × PAGE_SIZE bytes. */
  data?: Buffer;
}

export function encodeRecordHeader(kind: 1 | 2, task: number, vaddr: bigint, pages: number): Buffer {
  if (pages < 1 || pages > MAX_RECORD_PAGES) throw new RangeError(`a record holds 1..${MAX_RECORD_PAGES} pages, not ${pages}`);
  const b = Buffer.alloc(RECORD_HEADER_BYTES);
  b.writeUInt32LE(kind, 0);
  b.writeUInt32LE(task, 4);
  b.writeBigUInt64LE(vaddr, 8);
  b.writeUInt32LE(pages, 16);
  return b;
}

const protocolError = (message: string) =>
  new FerryError('ERR_AGENT_PROTOCOL', `pre-copy stream: ${message}`, { hint: 'Install the same ferry version on both hosts.' });

/**
 * Incremental decoder: feed chunks as they arrive, get whole records out. Data is copied once into the record's own
 * buffer, so the caller may keep it (the page store does) while chunks are recycled.
 */
export class PageRecordDecoder {
  private header = Buffer.alloc(RECORD_HEADER_BYTES);
  private headerFill = 0;
  private current: PageRecord | undefined;
  private dataFill = 0;

  push(chunk: Buffer, onRecord: (r: PageRecord) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.current) {
        const take = Math.min(RECORD_HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < RECORD_HEADER_BYTES) return;
        this.headerFill = 0;
        this.current = this.parseHeader();
        if (this.current.kind === RecordKind.ZERO) {
          onRecord(this.current);
          this.current = undefined;
        }
        continue;
      }
      const data = this.current.data!;
      const take = Math.min(data.length - this.dataFill, chunk.length - at);
      chunk.copy(data, this.dataFill, at, at + take);
      this.dataFill += take;
      at += take;
      if (this.dataFill === data.length) {
        onRecord(this.current);
        this.current = undefined;
        this.dataFill = 0;
      }
    }
  }

  /** Throws when the stream stopped inside a record. */
  end(): void {
    if (this.current || this.headerFill > 0) throw protocolError('ended inside a record');
  }

  private parseHeader(): PageRecord {
    const h = this.header;
    const kind = h.readUInt32LE(0);
    const task = h.readUInt32LE(4);
    const vaddr = h.readBigUInt64LE(8);
    const pages = h.readUInt32LE(16);
    if (kind !== RecordKind.DATA && kind !== RecordKind.ZERO) throw protocolError(`unknown record kind ${kind}`);
    if (pages < 1 || pages > MAX_RECORD_PAGES) throw protocolError(`record of ${pages} pages`);
    if (vaddr % BigInt(PAGE_SIZE) !== 0n) throw protocolError(`unaligned address 0x${vaddr.toString(16)}`);
    return { kind, task, vaddr, pages, data: kind === RecordKind.DATA ? Buffer.allocUnsafe(pages * PAGE_SIZE) : undefined };
  }
}
