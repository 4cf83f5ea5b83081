/**
 * The destination relay's end of the page link: it asks the source for pages and survives the link. Every GET keeps
 * its sequence number until its PAGES answer has arrived; when the connection breaks, unanswered GETs wait, and are
 * sent again (urgent ones first) over the next connection the source makes (attach()). An answer that arrives twice
 * is dropped. Only close() — or an ERROR the source sends for a GET — fails a get().
 *
 * The relay side listens (a unix socket in its 0700 directory) and the source dials, so a new connection is always
 * the source's doing; attach() replaces whatever connection was there.
 */
import type { Duplex } from 'node:stream';
import { FerryError, type ErrorCode } from '@ferry/core';
import type { StreamSocket } from '@ferry/core';
import { decodeFrameHeader, decodeJson, decodePages, encodeFrame, encodeGet, encodeJson, FRAME_HEADER_BYTES, FrameDecoder, FrameType, type Frame, type GetRequest } from './link-frames';

export type LinkEvent =
  | { type: 'link-up'; resent: number }
  | { type: 'link-down'; reason: string; outstanding: number };

export interface LinkRequesterOptions {
  /** The move's id: the source must say the same in its HELLO. */
  session: string;
  onEvent?: (event: LinkEvent) => void;
  /** A connection that brings nothing (no frame, not even PONG) for this long is dropped. Default 20 s. */
  idleTimeoutMs?: number;
  /** PING interval. Default 5 s. */
  pingMs?: number;
}

interface Outstanding extends GetRequest {
  seq: number;
  resolve: (data: Buffer) => void;
  reject: (error: unknown) => void;
  /** The connection it was last sent on. */
  sentOn?: Connection;
}

interface Connection {
  write(buffers: Buffer[]): void;
  destroy(): void;
  ready: boolean;
  lastHeard: number;
  timer: NodeJS.Timeout;
}

export class LinkRequester {
  private nextSeq = 1;
  private readonly outstanding = new Map<number, Outstanding>();
  private connection: Connection | undefined;
  private closedWith: unknown;
  private done: { seq: number; resolve: () => void; reject: (e: unknown) => void } | undefined;
  private upWaiters: (() => void)[] = [];
  /** Bytes of page data received (answers dropped as duplicates included). */
  bytesReceived = 0;

  constructor(private readonly options: LinkRequesterOptions) {}

  get connected(): boolean {
    return this.connection?.ready === true;
  }

  get pending(): number {
    return this.outstanding.size;
  }

  /** Pages [vaddr, vaddr + nrPages * 4096) of task `pid` (its pid in the images), whole, after however many links. */
  get(request: GetRequest): Promise<Buffer> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const entry: Outstanding = { ...request, seq: this.nextSeq++, resolve, reject };
      this.outstanding.set(entry.seq, entry);
      if (this.connected) this.send(entry);
    });
  }

  /**
   * Tells the source that every page has arrived, and resolves once it has said it heard (over this or a later
   * connection): only then may the source end its copy.
   */
  finish(): Promise<void> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (!this.done) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.done = { seq: this.nextSeq++, resolve, reject };
      this.donePromise = promise;
      if (this.connected) this.write(encodeFrame(FrameType.DONE, this.done.seq));
    }
    return this.donePromise!;
  }
  private donePromise: Promise<void> | undefined;

  /** Resolves once a connection has completed its HELLO. */
  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.upWaiters.push(resolve));
  }

  /** Takes a new connection from the source (dropping the previous one). */
  attach(stream: Duplex): void {
    const decoder = new FrameDecoder();
    const c = this.open({
      write: (buffers) => {
        if (stream.destroyed) return;
        stream.cork();
        for (const b of buffers) stream.write(b);
        stream.uncork();
      },
      destroy: () => stream.destroy(),
    });
    if (!c) return void stream.destroy();
    stream.on('data', (chunk: Buffer) => {
      if (this.connection !== c) return;
      c.lastHeard = Date.now();
      try {
        for (const frame of decoder.push(chunk)) this.onFrame(c, frame);
      } catch (error) {
        this.drop((error as Error).message);
      }
    });
    stream.once('close', () => this.connection === c && this.drop('the connection closed'));
    stream.on('error', () => undefined); // 'close' follows
    this.hello();
  }

  /**
   * The same for a socket driven natively (the relay's own listener): each frame's payload is read straight into one
   * buffer of its size, with no 64 KiB chunks to collect and copy (half the relay's CPU per MiB received).
   */
  attachSocket(socket: StreamSocket): void {
    let writing = Promise.resolve();
    const c = this.open({
      write: (buffers) => {
        const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
        writing = writing.then(() => socket.write(data)).catch(() => {
          if (this.connection === c) this.drop('a write failed');
        });
      },
      destroy: () => socket.close(),
    });
    if (!c) return void socket.close();
    void (async () => {
      try {
        for (;;) {
          const head = await socket.read(FRAME_HEADER_BYTES, { exact: true });
          if (!head || this.connection !== c) break;
          const { type, seq, length } = decodeFrameHeader(head.data);
          const payload = length === 0 ? Buffer.alloc(0) : (await socket.read(length, { exact: true }))?.data;
          if (!payload || this.connection !== c) break;
          c.lastHeard = Date.now();
          this.onFrame(c, { type, seq, payload });
        }
        if (this.connection === c) this.drop('the connection closed');
      } catch (error) {
        if (this.connection === c) this.drop((error as Error).message);
      }
    })();
    this.hello();
  }

  private open(io: Pick<Connection, 'write' | 'destroy'>): Connection | undefined {
    if (this.closedWith !== undefined) return undefined;
    this.drop('replaced by a new connection');
    const idle = this.options.idleTimeoutMs ?? 20_000;
    const c: Connection = {
      ...io,
      ready: false,
      lastHeard: Date.now(),
      timer: setInterval(() => {
        if (Date.now() - c.lastHeard > idle) this.drop(`nothing heard for ${idle} ms`);
        else if (c.ready) this.write(encodeFrame(FrameType.PING, 0));
      }, this.options.pingMs ?? 5_000),
    };
    c.timer.unref();
    this.connection = c;
    return c;
  }

  private hello(): void {
    this.write(encodeJson(FrameType.HELLO, 0, { session: this.options.session, role: 'relay' }));
  }

  /** Fails every pending get() and finish() with `error` and drops the connection. */
  close(error: unknown = new FerryError('ERR_ABORTED', 'the page link was closed')): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    this.drop('closed');
    for (const entry of this.outstanding.values()) entry.reject(error);
    this.outstanding.clear();
    this.done?.reject(error);
  }

  private onFrame(c: Connection, frame: Frame): void {
    if (!c.ready) {
      if (frame.type !== FrameType.HELLO) throw new Error(`frame ${frame.type} before HELLO`);
      const hello = decodeJson<{ session?: string; role?: string }>(frame);
      if (hello.session !== this.options.session || hello.role !== 'source') {
        throw new Error(`a peer of another move connected (session ${JSON.stringify(hello.session)})`);
      }
      c.ready = true;
      this.resend(c);
      for (const up of this.upWaiters.splice(0)) up();
      return;
    }
    switch (frame.type) {
      case FrameType.PAGES: {
        this.bytesReceived += Math.max(0, frame.payload.length - 16);
        const entry = this.outstanding.get(frame.seq);
        if (!entry) return; // answered already, over an earlier connection
        const pages = decodePages(frame);
        if (pages.pid !== entry.pid || pages.vaddr !== entry.vaddr || pages.data.length !== entry.nrPages * 4096) {
          throw new Error(`PAGES ${frame.seq} does not answer its GET`);
        }
        this.outstanding.delete(frame.seq);
        entry.resolve(pages.data);
        return;
      }
      case FrameType.ERROR: {
        const { code, message } = decodeJson<{ code?: string; message?: string }>(frame);
        const error = new FerryError((code as ErrorCode) ?? 'ERR_PAGES_PROTOCOL', `the source could not serve pages: ${message ?? 'no reason given'}`, {
          hint: 'The destination copy cannot get the rest of its memory.',
        });
        const entry = this.outstanding.get(frame.seq);
        if (entry) {
          this.outstanding.delete(frame.seq);
          entry.reject(error);
        } else if (frame.seq === 0) {
          this.close(error);
        }
        return;
      }
      case FrameType.DONE:
        if (this.done && frame.seq === this.done.seq) this.done.resolve();
        return;
      case FrameType.PING:
        this.write(encodeFrame(FrameType.PONG, frame.seq));
        return;
      case FrameType.PONG:
        return;
      default:
        throw new Error(`unexpected frame type ${frame.type}`);
    }
  }

  private resend(c: Connection): void {
    const all = [...this.outstanding.values()].sort((a, b) => Number(b.urgent) - Number(a.urgent) || a.seq - b.seq);
    let resent = 0;
    for (const entry of all) {
      if (entry.sentOn !== undefined) resent++;
      this.send(entry);
    }
    if (this.done) this.write(encodeFrame(FrameType.DONE, this.done.seq));
    this.options.onEvent?.({ type: 'link-up', resent });
    void c;
  }

  private send(entry: Outstanding): void {
    entry.sentOn = this.connection;
    this.write(encodeGet(entry.seq, entry));
  }

  private write(buffers: Buffer[]): void {
    this.connection?.write(buffers);
  }

  private drop(reason: string): void {
    const c = this.connection;
    if (!c) return;
    this.connection = undefined;
    clearInterval(c.timer);
    c.destroy();
    if (c.ready) this.options.onEvent?.({ type: 'link-down', reason, outstanding: this.outstanding.size });
  }
}
