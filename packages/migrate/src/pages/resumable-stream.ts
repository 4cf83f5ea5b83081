/**
 * One byte stream between two CRIU-side sockets (the lazy-pages daemon's and the page server's) that survives the
 * loss of the link carrying it: each side keeps what it sent until the peer acknowledges it, and a new link resumes
 * from the offsets both sides declare in their HELLO. CRIU never notices a break.
 *
 * Frames on the link: [type u8][length u32 BE][payload]
 *   DATA  1  stream bytes (at most 256 KiB)     ACK    2  u64 total bytes received
 *   HELLO 3  'FRL1', u64 total bytes received   END    4  u64 total bytes sent (the local socket read EOF)
 *   ABORT 5  empty: the peer gives up
 *
 * Ownership: `local` stays the owner's. It is never ended or destroyed here, because CRIU reads a clean FIN on the
 * lazy-pages link as "every page served": only the owner may decide that (after 'remote-end'). Create it with
 * `allowHalfOpen: true`, or node ends its write side by itself when it reads EOF. Links handed to attach() become
 * ours: they are destroyed when replaced, detached or lost. The owner must listen to 'error'.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FerryError } from '@ferry/core';

export interface ResumableEndOptions {
  /** Send an ACK after this many bytes received since the last ACK (default 1 MiB). */
  ackEveryBytes?: number;
  /** Stop reading the local socket while more than this many sent bytes are unacknowledged (default 32 MiB). */
  maxUnackedBytes?: number;
}

const enum Type { DATA = 1, ACK = 2, HELLO = 3, END = 4, ABORT = 5 }
const HEADER_BYTES = 5;
const MAX_DATA_BYTES = 256 << 10;
const MAX_FRAME_BYTES = 1 << 20;
const MAGIC = Buffer.from('FRL1', 'ascii');

function protocolError(message: string): FerryError {
  return new FerryError('ERR_PAGES_PROTOCOL', `resumable page stream: ${message}`, {
    hint: 'The page stream cannot be resumed: abort the move (the source still holds the pages), and check that both hosts run the same ferry version.',
  });
}

function frame(type: Type, value?: bigint, prefix?: Buffer): Buffer {
  const length = (prefix?.length ?? 0) + (value === undefined ? 0 : 8);
  const b = Buffer.alloc(HEADER_BYTES + length);
  b.writeUInt8(type, 0);
  b.writeUInt32BE(length, 1);
  if (prefix) prefix.copy(b, HEADER_BYTES);
  if (value !== undefined) b.writeBigUInt64BE(value, b.length - 8);
  return b;
}

interface Attaching { resolve: () => void; reject: (e: Error) => void }

export class ResumableEnd extends EventEmitter {
  private readonly ackEveryBytes: number;
  private readonly maxUnackedBytes: number;
  private link: Duplex | null = null;
  private handshaken = false;
  private attaching: Attaching | null = null;
  private dead = false;
  // Sent side. chunks[0][0] is stream offset `retainedFrom` (the peer's highest acknowledgement); the send cursor
  // (sendIdx, sendOff) points at stream offset `sendOffset` inside them; `sent` counts every byte read from local.
  private chunks: Buffer[] = [];
  private retainedFrom = 0;
  private sendIdx = 0;
  private sendOff = 0;
  private sendOffset = 0;
  private sent = 0;
  private linkBlocked = false;
  private localEnded = false;
  private endSentOnLink = false;
  // Received side: `rx` holds the current link's bytes not yet parsed into whole frames.
  private rx: Buffer[] = [];
  private rxBytes = 0;
  private received = 0;
  private ackedAt = 0;
  private localBlocked = false;
  private remoteEnded = false;

  constructor(private readonly local: Socket, options: ResumableEndOptions = {}) {
    super();
    this.ackEveryBytes = options.ackEveryBytes ?? 1 << 20;
    this.maxUnackedBytes = options.maxUnackedBytes ?? 32 << 20;
    local.on('data', (chunk: Buffer) => { this.chunks.push(chunk); this.sent += chunk.length; this.pump(); });
    local.on('end', () => { this.localEnded = true; this.pump(); });
    local.on('drain', () => { this.localBlocked = false; this.link?.resume(); });
  }

  get linked(): boolean { return this.link !== null && this.handshaken; }
  get bytesSent(): number { return this.sent; }
  get bytesReceived(): number { return this.received; }
  /** Bytes read from local that the peer has not acknowledged yet (kept for retransmission). */
  get bytesRetained(): number { return this.sent - this.retainedFrom; }

  /** Carry the stream over `link` from now on (see the module comment); resolves once both HELLOs are exchanged. */
  attach(link: Duplex): Promise<void> {
    this.drop();
    if (this.dead) {
      link.destroy();
      return Promise.reject(protocolError('this end has been aborted or failed and cannot carry the stream any more'));
    }
    this.link = link;
    this.rx = [];
    this.rxBytes = 0;
    this.endSentOnLink = false;
    const promise = new Promise<void>((resolve, reject) => { this.attaching = { resolve, reject }; });
    const lost = (): void => this.lost(link);
    link.on('data', (chunk: Buffer) => { if (this.link === link) this.onLinkData(link, chunk); });
    link.on('drain', () => { if (this.link === link) { this.linkBlocked = false; this.pump(); } });
    for (const event of ['end', 'close', 'error']) link.on(event, lost);
    if (this.localBlocked) link.pause();
    this.ackedAt = this.received;
    link.write(frame(Type.HELLO, BigInt(this.received), MAGIC));
    return promise;
  }

  abort(): void {
    const link = this.link;
    if (link && this.handshaken) {
      this.link = null;
      link.end(frame(Type.ABORT), () => link.destroy());
    }
    this.dead = true;
    this.drop();
  }

  detach(): void { this.drop(); }

  /** Forget the current link without an event; a pending attach() rejects. */
  private drop(error?: Error): void {
    const link = this.link;
    this.link = null;
    this.handshaken = false;
    // Without a link local is read on (up to maxUnackedBytes): those bytes go after the next handshake.
    this.linkBlocked = false;
    link?.destroy();
    const attaching = this.attaching;
    this.attaching = null;
    attaching?.reject(error ?? new FerryError('ERR_TRANSPORT_CLOSED', 'resumable page stream: the link was replaced or detached before the handshake'));
    this.flowLocal();
  }

  private lost(link: Duplex): void {
    if (this.link !== link) return;
    this.drop(new FerryError('ERR_TRANSPORT_CLOSED', 'resumable page stream: the link closed before the peer said HELLO', {
      hint: 'Attach a new link: the stream resumes where it stopped.',
    }));
    this.emit('link-lost');
  }

  private fail(error: FerryError): void {
    this.dead = true;
    this.drop(error);
    this.emit('error', error);
  }

  // Local is read only while the peer keeps up: the retained bytes are bounded, and a blocked link pushes back.
  private flowLocal(): void {
    if (this.linkBlocked || this.bytesRetained > this.maxUnackedBytes) this.local.pause();
    else this.local.resume();
  }

  private pump(): void {
    const link = this.link;
    if (link && this.handshaken) {
      while (!this.linkBlocked && this.sendOffset < this.sent) {
        const chunk = this.chunks[this.sendIdx]!;
        const piece = chunk.subarray(this.sendOff, this.sendOff + MAX_DATA_BYTES);
        const header = Buffer.alloc(HEADER_BYTES);
        header.writeUInt8(Type.DATA, 0);
        header.writeUInt32BE(piece.length, 1);
        link.write(header);
        this.linkBlocked = !link.write(piece);
        this.sendOffset += piece.length;
        this.sendOff += piece.length;
        if (this.sendOff === chunk.length) { this.sendIdx++; this.sendOff = 0; }
      }
      // END goes again on every link: the peer reports it once, and cannot tell us whether the last one arrived.
      if (this.localEnded && !this.endSentOnLink && this.sendOffset === this.sent) {
        this.endSentOnLink = true;
        this.linkBlocked = !link.write(frame(Type.END, BigInt(this.sent))) || this.linkBlocked;
      }
    }
    this.flowLocal();
  }

  /** The peer has every byte below `offset` (checked by the caller to lie within the retained bytes): release them. */
  private release(offset: number): void {
    while (this.chunks.length > 0 && this.retainedFrom + this.chunks[0]!.length <= offset) {
      this.retainedFrom += this.chunks.shift()!.length;
      this.sendIdx--;
    }
    const cut = offset - this.retainedFrom;
    if (cut > 0) {
      this.chunks[0] = this.chunks[0]!.subarray(cut);
      if (this.sendIdx === 0) this.sendOff -= cut;
      this.retainedFrom = offset;
    }
    this.flowLocal();
  }

  /** Move the send cursor to `offset` (the peer's HELLO): what it lacks goes again, what it has does not. */
  private rewind(offset: number): void {
    this.sendIdx = 0;
    this.sendOff = 0;
    this.sendOffset = this.retainedFrom;
    while (this.sendOffset < offset) {
      const step = Math.min(offset - this.sendOffset, this.chunks[this.sendIdx]!.length - this.sendOff);
      this.sendOffset += step;
      this.sendOff += step;
      if (this.sendOff === this.chunks[this.sendIdx]!.length) { this.sendIdx++; this.sendOff = 0; }
    }
  }

  private take(n: number): Buffer[] {
    const pieces: Buffer[] = [];
    this.rxBytes -= n;
    while (n > 0) {
      const head = this.rx[0]!;
      if (head.length <= n) { pieces.push(head); this.rx.shift(); n -= head.length; }
      else { pieces.push(head.subarray(0, n)); this.rx[0] = head.subarray(n); n = 0; }
    }
    return pieces;
  }

  private onLinkData(link: Duplex, chunk: Buffer): void {
    this.rx.push(chunk);
    this.rxBytes += chunk.length;
    // A frame is acted on only once it is whole: a partial one dies with its link and is sent again on the next.
    while (this.link === link && this.rxBytes >= HEADER_BYTES) {
      const header = this.rx[0]!.length >= HEADER_BYTES ? this.rx[0]! : Buffer.concat(this.rx.slice(0, HEADER_BYTES));
      const type = header.readUInt8(0);
      const length = header.readUInt32BE(1);
      if (type < Type.DATA || type > Type.ABORT || length > MAX_FRAME_BYTES) {
        return this.fail(protocolError(`a frame of type ${type} and ${length} bytes is not part of the protocol`));
      }
      if (this.rxBytes < HEADER_BYTES + length) return;
      this.take(HEADER_BYTES);
      const pieces = this.take(length);
      this.onFrame(link, type as Type, pieces, length);
    }
  }

  private onFrame(link: Duplex, type: Type, pieces: Buffer[], length: number): void {
    if (!this.handshaken && type !== Type.HELLO) return this.fail(protocolError(`frame type ${type} before HELLO`));
    if (type === Type.DATA) {
      for (const piece of pieces) if (!this.local.write(piece)) this.localBlocked = true;
      if (this.localBlocked) link.pause();
      this.received += length;
      if (this.received - this.ackedAt >= this.ackEveryBytes) this.sendAck(link);
      return;
    }
    const payload = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    const wanted = type === Type.HELLO ? 12 : type === Type.ABORT ? 0 : 8;
    if (length !== wanted || (type === Type.HELLO && !payload.subarray(0, 4).equals(MAGIC))) {
      return this.fail(protocolError(`a malformed frame of type ${type} (${length} bytes)`));
    }
    if (type === Type.ABORT) {
      this.dead = true;
      this.drop();
      this.emit('remote-abort');
      return;
    }
    const value = Number(payload.readBigUInt64BE(length - 8));
    if (type === Type.HELLO) return this.onHello(link, value);
    if (type === Type.ACK) {
      // ACKs only grow, and count only bytes this link carried.
      if (value < this.retainedFrom || value > this.sendOffset) {
        return this.fail(protocolError(`ACK of ${value} bytes outside ${this.retainedFrom}..${this.sendOffset}`));
      }
      return this.release(value);
    }
    // END: DATA arrives in order on one link and resumes at our offset, so the peer's total must be ours now.
    if (value !== this.received) return this.fail(protocolError(`END after ${value} bytes, but ${this.received} arrived`));
    this.sendAck(link);
    if (!this.remoteEnded) {
      this.remoteEnded = true;
      this.emit('remote-end');
    }
  }

  private onHello(link: Duplex, offset: number): void {
    if (this.handshaken) return this.fail(protocolError('a second HELLO on one link'));
    // Below what we retain, the bytes are gone; beyond what we read, the peer speaks of another stream.
    if (offset < this.retainedFrom || offset > this.sent) {
      return this.fail(protocolError(`the peer resumes at byte ${offset}, but this end holds bytes ${this.retainedFrom}..${this.sent} only`));
    }
    this.release(offset);
    this.rewind(offset);
    this.handshaken = true;
    const attaching = this.attaching;
    this.attaching = null;
    attaching?.resolve();
    if (this.link === link) this.pump();
  }

  private sendAck(link: Duplex): void {
    this.ackedAt = this.received;
    link.write(frame(Type.ACK, BigInt(this.received)));
  }
}
