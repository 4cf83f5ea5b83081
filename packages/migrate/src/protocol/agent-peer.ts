/**
 * Request/response over frames, used by both ends: the source calls, the agent serves. A request may carry one byte
 * stream (a tar of a bundle or an image directory) as DATA frames right after it; only one stream is in flight at a
 * time, which keeps the protocol trivially ordered on a single SSH channel.
 */
import { PassThrough, Writable, type Readable } from 'node:stream';
import { FerryError, isErrorCode, type ErrorCode } from '@ferry/core';
import { FRAME_DATA, FRAME_DATA_END, FRAME_JSON, FrameDecoder, encodeFrame, encodeJson, type Frame } from './frames';
import type { RateLimiter } from '../transport/rate-limiter';

/** Bumped on any incompatible change; the hello exchange refuses a mismatch with ERR_PRECHECK_*. */
/** 2: page paths over unix sockets in 0700 directories (page-link, page-server answers socketPath). */
export const PROTOCOL_VERSION = 2;
const DATA_CHUNK_BYTES = 1 << 20;

export interface WireError {
  code: string;
  message: string;
  hint?: string;
}

type Message =
  | { t: 'req'; id: number; method: string; params: unknown; stream?: boolean }
  | { t: 'res'; id: number; ok: true; result: unknown }
  | { t: 'res'; id: number; ok: false; error: WireError };

export type Handler = (params: any, stream: Readable | undefined) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function toWireError(err: unknown): WireError {
  if (err instanceof FerryError) return { code: err.code, message: err.message, hint: err.hint };
  return { code: 'ERR_AGENT_FAILED', message: err instanceof Error ? err.message : String(err) };
}

export function fromWireError(error: WireError, where: string): FerryError {
  const code: ErrorCode = isErrorCode(error.code) ? error.code : 'ERR_AGENT_FAILED';
  return new FerryError(code, `${where}: ${error.message}`, { hint: error.hint });
}

export class AgentPeer {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private inbound: PassThrough | undefined;
  private closedError: Error | undefined;
  private readonly handlers = new Map<string, Handler>();
  /** Serialises outgoing streams: DATA frames of two requests must never interleave. */
  private sending: Promise<void> = Promise.resolve();
  private readonly drainWaiters = new Set<{ resolve: () => void; reject: (e: unknown) => void }>();
  private readonly decoder = new FrameDecoder();
  /** --bandwidth: every request's byte stream waits for it (JSON messages do not). */
  private rateLimiter: RateLimiter | undefined;

  /**
   * @param explainClose called when the input ends: lets the transport say why (e.g. "ferry: command not found" on
   *   the far side) instead of a generic "connection closed".
   */
  constructor(
    input: Readable,
    private readonly output: Writable,
    private readonly where: string,
    private readonly explainClose?: () => FerryError | undefined,
  ) {
    const decoder = this.decoder;
    input.pipe(decoder);
    decoder.on('data', (frame: Frame) => this.onFrame(frame));
    const end = (err?: Error) =>
      this.fail(
        err ??
          this.explainClose?.() ??
          new FerryError('ERR_TRANSPORT_CLOSED', `${where}: the connection closed`, {
            hint: 'The SSH connection or the agent went away; the source container keeps running.',
          }),
      );
    decoder.on('error', (err) => end(new FerryError('ERR_AGENT_PROTOCOL', `${where}: ${err.message}`)));
    decoder.on('end', () => end());
    input.on('error', (err) => end(new FerryError('ERR_TRANSPORT_CLOSED', `${where}: ${err.message}`, { cause: err })));
    input.on('close', () => end());
  }

  handle(method: string, handler: Handler): this {
    this.handlers.set(method, handler);
    return this;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Why the conversation ended (a protocol error, or ERR_TRANSPORT_CLOSED for a plain end of the input). */
  get closeReason(): Error | undefined {
    return this.closedError;
  }

  /** Calls `method`; with `upload`, the function writes the request's byte stream into the given sink. */
  async request<T>(method: string, params: unknown, upload?: (sink: Writable) => Promise<void>): Promise<T> {
    if (this.closedError) throw this.closedError;
    const id = this.nextId++;
    const reply = new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    reply.catch(() => undefined); // observed below; avoid an unhandled rejection while the upload runs
    const previous = this.sending;
    let release!: () => void;
    this.sending = new Promise((r) => (release = r));
    await previous;
    try {
      await this.write(encodeJson({ t: 'req', id, method, params, stream: upload !== undefined } satisfies Message));
      if (upload) {
        const sink = new Writable({
          highWaterMark: DATA_CHUNK_BYTES,
          write: (chunk: Buffer, _enc, callback) => {
            this.writeData(chunk).then(() => callback(), callback);
          },
          final: (callback) => {
            this.write(encodeFrame(FRAME_DATA_END)).then(() => callback(), callback);
          },
        });
        // A failed write surfaces as the sink's 'error': turn it into this request's rejection.
        const failed = new Promise<never>((_resolve, reject) => sink.once('error', reject));
        failed.catch(() => undefined);
        const finished = (async () => {
          await upload(sink);
          if (!sink.writableFinished) await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
        })();
        await Promise.race([finished, failed]);
      }
    } finally {
      release();
    }
    return reply;
  }

  /** Caps the rate of the byte streams this peer writes (images, bundles, pages); undefined lifts the cap. */
  limitRate(limiter: RateLimiter | undefined): void {
    this.rateLimiter = limiter;
  }

  /**
   * Resolves once the output has taken every byte of `chunk` (its write callbacks: an SSH channel has copied them
   * into its packets), so the caller may reuse the memory (the rounds' read buffers: memory-rounds.ts). Rejects when
   * a piece failed or the connection died with it pending: the output may still hold it.
   */
  private async writeData(chunk: Buffer): Promise<void> {
    const taken: Promise<void>[] = [];
    for (let offset = 0; offset < chunk.length; offset += DATA_CHUNK_BYTES) {
      const piece = chunk.subarray(offset, offset + DATA_CHUNK_BYTES);
      if (this.rateLimiter) await this.rateLimiter.take(piece.length);
      // Header and payload as two writes: copying each MiB into a joined buffer costs more than the extra call.
      const header = Buffer.allocUnsafe(5);
      header.writeUInt32BE(piece.length + 1, 0);
      header.writeUInt8(FRAME_DATA, 4);
      this.output.write(header);
      let settle!: { resolve: () => void; reject: (e: unknown) => void };
      const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
      written.catch(() => undefined); // awaited below
      taken.push(written);
      await this.write(piece, settle);
    }
    await Promise.all(taken);
  }

  /**
   * Resolves once `bytes` is queued (or written) without exceeding the output's buffer; `taken` settles once the output
   * wrote it (resolves) or failed (rejects: it may still hold the bytes, so the caller must not reuse them).
   */
  private write(bytes: Buffer, taken?: { resolve: () => void; reject: (e: unknown) => void }): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      let forget: (() => void) | undefined;
      if (taken) {
        // A write the connection's death leaves pending must not keep its caller waiting: fail() rejects it too.
        this.drainWaiters.add(taken);
        forget = () => this.drainWaiters.delete(taken);
      }
      const ok = this.output.write(bytes, (err) => {
        forget?.();
        if (err) {
          taken?.reject(err);
          reject(err);
        } else taken?.resolve();
      });
      if (ok) return resolve();
      // A dead connection never drains: fail() must settle this wait, or nothing would be left to keep the process
      // alive and it would exit quietly with status 0 in the middle of a migration.
      const waiter = { resolve, reject };
      this.drainWaiters.add(waiter);
      this.output.once('drain', () => {
        this.drainWaiters.delete(waiter);
        resolve();
      });
    });
  }

  private onFrame(frame: Frame): void {
    if (frame.kind === FRAME_DATA) {
      const inbound = this.inbound;
      if (!inbound) return this.fail(new FerryError('ERR_AGENT_PROTOCOL', `${this.where}: data without a stream`));
      if (inbound.destroyed) return; // the handler gave up on its stream: the rest of it is dropped
      if (!inbound.write(frame.payload)) this.pauseUntilDrained(inbound);
      return;
    }
    if (frame.kind === FRAME_DATA_END) {
      this.inbound?.end();
      this.inbound = undefined;
      return;
    }
    let message: Message;
    try {
      message = JSON.parse(frame.payload.toString('utf8')) as Message;
    } catch {
      return this.fail(new FerryError('ERR_AGENT_PROTOCOL', `${this.where}: a control frame is not JSON`));
    }
    if (message.t === 'res') {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (!waiter) return;
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(fromWireError(message.error, this.where));
      return;
    }
    if (message.t === 'req') void this.serve(message);
  }

  /**
   * Backpressure for incoming streams: while the handler's stream is full, no more frames are decoded, so the
   * decoder's input fills, the input (SSH channel or stdin) is paused, and the sender's writes wait. Without it a
   * destination with a slow disk buffers the whole upload in memory.
   */
  private pauseUntilDrained(inbound: PassThrough): void {
    this.decoder.pause();
    const resume = () => {
      inbound.off('drain', resume);
      inbound.off('close', resume);
      this.decoder.resume();
    };
    inbound.on('drain', resume);
    inbound.on('close', resume);
  }

  private async serve(message: Extract<Message, { t: 'req' }>): Promise<void> {
    let stream: PassThrough | undefined;
    if (message.stream) {
      stream = new PassThrough({ highWaterMark: DATA_CHUNK_BYTES });
      this.inbound = stream;
    }
    const handler = this.handlers.get(message.method);
    let response: Message;
    try {
      if (!handler) throw new FerryError('ERR_AGENT_PROTOCOL', `unknown method ${message.method}`, { hint: 'Install the same ferry version on both hosts.' });
      const result = await handler(message.params, stream);
      response = { t: 'res', id: message.id, ok: true, result: result ?? null };
    } catch (err) {
      response = { t: 'res', id: message.id, ok: false, error: toWireError(err) };
    } finally {
      // Drain what is left of the stream (a failed handler, trailing bytes nobody read) so that the decoder, paused
      // for it, goes on and the next request's frames are read.
      stream?.resume();
    }
    if (!this.closedError) await this.write(encodeJson(response)).catch(() => undefined);
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.inbound?.destroy(err);
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
    for (const waiter of this.drainWaiters) waiter.reject(err);
    this.drainWaiters.clear();
  }

  close(): void {
    this.output.end();
  }
}
