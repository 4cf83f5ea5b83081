/**
 * The agent's wire format on the SSH exec channel: frames of [u32 length][u8 kind][payload], where length counts
 * kind + payload. JSON frames carry control messages; DATA frames carry the bytes of the stream opened by the
 * last request that announced one, and DATA_END closes it. Versioned by the hello exchange (PROTOCOL_VERSION).
 */
import { Transform, type TransformCallback } from 'node:stream';

export const FRAME_JSON = 0;
export const FRAME_DATA = 1;
export const FRAME_DATA_END = 2;
export type FrameKind = typeof FRAME_JSON | typeof FRAME_DATA | typeof FRAME_DATA_END;

/** Larger frames are refused: a corrupted length must not make us allocate gigabytes. */
export const MAX_FRAME_BYTES = 16 << 20;

export interface Frame {
  kind: FrameKind;
  payload: Buffer;
}

export function encodeFrame(kind: FrameKind, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.allocUnsafe(5);
  header.writeUInt32BE(payload.length + 1, 0);
  header.writeUInt8(kind, 4);
  return Buffer.concat([header, payload]);
}

export function encodeJson(message: unknown): Buffer {
  return encodeFrame(FRAME_JSON, Buffer.from(JSON.stringify(message), 'utf8'));
}

/** Bytes in, Frame objects out. Errors (oversized or unknown frames) destroy the stream. */
export class FrameDecoder extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor() {
    // A few decoded frames (up to 1 MiB each) wait at most: the rest waits in the input, paused (agent-peer.ts).
    super({ readableObjectMode: true, readableHighWaterMark: 4, writableHighWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Frames (1 MiB of data) arrive in many small chunks: join only once a whole frame is here, never per chunk.
    while (this.pendingBytes >= 4) {
      const length = this.peekLength();
      if (length < 1 || length > MAX_FRAME_BYTES) return callback(new Error(`agent protocol: bad frame length ${length}`));
      if (this.pendingBytes < 4 + length) break;
      const frame = this.takeBytes(4 + length);
      const kind = frame.readUInt8(4);
      if (kind > FRAME_DATA_END) return callback(new Error(`agent protocol: unknown frame kind ${kind}`));
      this.push({ kind: kind as FrameKind, payload: frame.subarray(5) } satisfies Frame);
    }
    callback();
  }

  private peekLength(): number {
    const first = this.pending[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.alloc(4);
    let filled = 0;
    for (const chunk of this.pending) {
      filled += chunk.copy(head, filled, 0, Math.min(chunk.length, 4 - filled));
      if (filled === 4) break;
    }
    return head.readUInt32BE(0);
  }

  /** Removes and returns the first `bytes` bytes (a view when they lie in one chunk). */
  private takeBytes(bytes: number): Buffer {
    const first = this.pending[0]!;
    let out: Buffer;
    if (first.length >= bytes) {
      out = first.subarray(0, bytes);
      if (first.length === bytes) this.pending.shift();
      else this.pending[0] = first.subarray(bytes);
    } else {
      out = Buffer.allocUnsafe(bytes);
      let filled = 0;
      while (filled < bytes) {
        const head = this.pending[0]!;
        const n = Math.min(head.length, bytes - filled);
        head.copy(out, filled, 0, n);
        filled += n;
        if (n === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(n);
      }
    }
    this.pendingBytes -= bytes;
    return out;
  }

  override _flush(callback: TransformCallback): void {
    callback(this.pendingBytes ? new Error(`agent protocol: stream ended inside a frame (${this.pendingBytes} bytes left)`) : undefined);
  }
}
