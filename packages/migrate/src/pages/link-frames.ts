/**
 * Frames of ferry's page link between the source and the destination relay (link-requester.ts, link-responder.ts).
 * Every frame: a 16-byte header, then `length` payload bytes.
 *
 *   0  u16 magic 0x5046 ("FP")   2  u8 version (1)   3  u8 type   4  u32 seq   8  u32 length   12  u32 reserved
 *
 *   HELLO  both ways, first     JSON { session, role }: a peer of another move is refused
 *   GET    relay -> source      u32 pid (the task's pid in the images), u32 nrPages, u64 vaddr, u32 flags (URGENT)
 *   PAGES  source -> relay      u64 vaddr, u32 pid, u32 nrPages, then nrPages * 4096 bytes; seq = the GET's
 *   ERROR  either way           JSON { code, message }; seq = the GET's, or 0 for the link as a whole
 *   DONE   relay -> source      every page has reached the destination; answered with DONE (same seq)
 *   PING / PONG                 liveness of a quiet link
 *
 * seq numbers are the relay's: a GET keeps its seq when it is sent again over a new connection, so a PAGES answer
 * that arrives twice (once per connection) is recognised and dropped.
 */
import { FerryError } from '@ferry/core';

export const LINK_MAGIC = 0x5046;
export const LINK_VERSION = 1;
export const FRAME_HEADER_BYTES = 16;
/** The largest payload a peer accepts (a PAGES frame of 16 MiB of pages plus its 16-byte prefix). */
export const MAX_PAYLOAD_BYTES = (16 << 20) + 16;
const PAGE = 4096;

export enum FrameType {
  HELLO = 1,
  GET = 2,
  PAGES = 3,
  ERROR = 4,
  DONE = 5,
  PING = 6,
  PONG = 7,
}

export const GET_URGENT = 1;

export interface Frame {
  type: FrameType;
  seq: number;
  payload: Buffer;
}

export interface GetRequest {
  pid: number;
  vaddr: bigint;
  nrPages: number;
  urgent: boolean;
}

function protocolError(message: string): FerryError {
  return new FerryError('ERR_PAGES_PROTOCOL', `page link: ${message}`, { hint: 'Install the same ferry version on both hosts.' });
}

function header(type: FrameType, seq: number, length: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt16LE(LINK_MAGIC, 0);
  h.writeUInt8(LINK_VERSION, 2);
  h.writeUInt8(type, 3);
  h.writeUInt32LE(seq >>> 0, 4);
  h.writeUInt32LE(length, 8);
  return h;
}

/** A frame as buffers to write in order (the page data is not copied). */
export function encodeFrame(type: FrameType, seq: number, ...payload: Buffer[]): Buffer[] {
  const length = payload.reduce((n, b) => n + b.length, 0);
  if (length > MAX_PAYLOAD_BYTES) throw new RangeError(`frame payload of ${length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  return [header(type, seq, length), ...payload];
}

export function encodeJson(type: FrameType.HELLO | FrameType.ERROR, seq: number, value: object): Buffer[] {
  return encodeFrame(type, seq, Buffer.from(JSON.stringify(value)));
}

export function encodeGet(seq: number, get: GetRequest): Buffer[] {
  const p = Buffer.alloc(20);
  p.writeUInt32LE(get.pid, 0);
  p.writeUInt32LE(get.nrPages, 4);
  p.writeBigUInt64LE(get.vaddr, 8);
  p.writeUInt32LE(get.urgent ? GET_URGENT : 0, 16);
  return encodeFrame(FrameType.GET, seq, p);
}

export function decodeGet(frame: Frame): GetRequest {
  if (frame.payload.length !== 20) throw protocolError(`GET of ${frame.payload.length} bytes`);
  const p = frame.payload;
  const get = { pid: p.readUInt32LE(0), nrPages: p.readUInt32LE(4), vaddr: p.readBigUInt64LE(8), urgent: (p.readUInt32LE(16) & GET_URGENT) !== 0 };
  if (get.nrPages < 1 || get.nrPages * PAGE > MAX_PAYLOAD_BYTES - 16) throw protocolError(`GET of ${get.nrPages} pages`);
  if (get.vaddr % BigInt(PAGE) !== 0n) throw protocolError(`GET at unaligned 0x${get.vaddr.toString(16)}`);
  return get;
}

export function encodePages(seq: number, pid: number, vaddr: bigint, data: Buffer): Buffer[] {
  if (data.length === 0 || data.length % PAGE !== 0) throw new RangeError(`PAGES of ${data.length} bytes`);
  const p = Buffer.alloc(16);
  p.writeBigUInt64LE(vaddr, 0);
  p.writeUInt32LE(pid, 8);
  p.writeUInt32LE(data.length / PAGE, 12);
  return encodeFrame(FrameType.PAGES, seq, p, data);
}

export function decodePages(frame: Frame): { pid: number; vaddr: bigint; data: Buffer } {
  const p = frame.payload;
  if (p.length < 16) throw protocolError(`PAGES of ${p.length} bytes`);
  const nrPages = p.readUInt32LE(12);
  if (p.length !== 16 + nrPages * PAGE) throw protocolError(`PAGES says ${nrPages} pages but carries ${p.length - 16} bytes`);
  return { vaddr: p.readBigUInt64LE(0), pid: p.readUInt32LE(8), data: p.subarray(16) };
}

export function decodeJson<T>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T;
  } catch {
    throw protocolError(`frame ${frame.type} is not JSON`);
  }
}

/** A frame header's fields; throws ERR_PAGES_PROTOCOL when it is not one. */
export function decodeFrameHeader(h: Buffer): { type: FrameType; seq: number; length: number } {
  if (h.readUInt16LE(0) !== LINK_MAGIC) throw protocolError('bad magic (not a ferry page link)');
  if (h.readUInt8(2) !== LINK_VERSION) throw protocolError(`version ${h.readUInt8(2)}, this ferry speaks ${LINK_VERSION}`);
  const length = h.readUInt32LE(8);
  if (length > MAX_PAYLOAD_BYTES) throw protocolError(`frame of ${length} bytes`);
  return { type: h.readUInt8(3) as FrameType, seq: h.readUInt32LE(4), length };
}

/** Incremental decoder: push() chunks as they arrive, get whole frames back (payloads copied once, when split). */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need: { type: FrameType; seq: number; length: number } | undefined;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (!this.need) {
        if (this.buffered < FRAME_HEADER_BYTES) return out;
        this.need = decodeFrameHeader(this.take(FRAME_HEADER_BYTES));
      }
      if (this.buffered < this.need.length) return out;
      const { type, seq, length } = this.need;
      this.need = undefined;
      out.push({ type, seq, payload: this.take(length) });
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
