/**
 * The source's end of the page link: it answers the relay's GETs from the frozen source memory. It holds no state
 * worth keeping across connections (the relay re-sends what it still needs), so the source's part of a broken link
 * is only to dial again (serveLink() once per connection).
 *
 * Several reads run at once (process_vm_readv on the libuv pool), and the answers are written as they complete, urgent
 * ones (faults) before bulk ones, never more than `maxQueuedBytes` ahead of what the stream has taken: a fault's page
 * does not wait behind megabytes of background pages.
 */
import type { Duplex } from 'node:stream';
import { isFerryError } from '@ferry/core';
import { decodeGet, decodeJson, encodeFrame, encodeJson, encodePages, FrameDecoder, FrameType, type Frame, type GetRequest } from './link-frames';

export interface LinkResponderOptions {
  session: string;
  /** The pages, whole; throw a FerryError (ERR_POSTCOPY_SOURCE_LOST when the memory is gone) to refuse. */
  readPages(request: GetRequest): Promise<Buffer>;
  /** Reads in flight at once. Default 4. */
  concurrency?: number;
  /** Answer bytes handed to the stream but not yet flushed, at most (roughly). Default 8 MiB. */
  maxQueuedBytes?: number;
}

export type LinkOutcome =
  /** The relay said every page has arrived (and was told it was heard). */
  | { outcome: 'done' }
  /** The connection ended or failed: dial again. */
  | { outcome: 'closed'; reason: string };

export interface LinkStats {
  gets: number;
  bytesSent: number;
}

export function serveLink(stream: Duplex, options: LinkResponderOptions, stats: LinkStats = { gets: 0, bytesSent: 0 }): Promise<LinkOutcome> {
  const concurrency = options.concurrency ?? 4;
  const maxQueued = options.maxQueuedBytes ?? 8 << 20;
  const decoder = new FrameDecoder();
  const waiting: { seq: number; get: GetRequest }[] = [];
  const ready: { urgent: Buffer[][]; bulk: Buffer[][] } = { urgent: [], bulk: [] };
  let reading = 0;
  let helloed = false;
  let finished = false;

  return new Promise<LinkOutcome>((resolve) => {
    const end = (outcome: LinkOutcome) => {
      if (finished) return;
      finished = true;
      if (outcome.outcome === 'done') stream.end();
      else stream.destroy();
      resolve(outcome);
    };
    const write = (buffers: Buffer[]) => {
      stream.cork();
      for (const b of buffers) stream.write(b);
      stream.uncork();
    };
    const pump = () => {
      while (!finished && stream.writableLength < maxQueued) {
        const next = ready.urgent.shift() ?? ready.bulk.shift();
        if (!next) break;
        stats.bytesSent += next.reduce((n, b) => n + b.length, 0);
        write(next);
      }
      startReads();
    };
    const startReads = () => {
      // Urgent GETs jump the queue; reads stop while answers pile up unsent (the link is the bottleneck then).
      waiting.sort((a, b) => Number(b.get.urgent) - Number(a.get.urgent));
      while (!finished && reading < concurrency && waiting.length > 0 && ready.bulk.length < concurrency) {
        const { seq, get } = waiting.shift()!;
        reading++;
        stats.gets++;
        options.readPages(get).then(
          (data) => {
            reading--;
            (get.urgent ? ready.urgent : ready.bulk).push(encodePages(seq, get.pid, get.vaddr, data));
            pump();
          },
          (error: unknown) => {
            reading--;
            const code = isFerryError(error) ? error.code : 'ERR_POSTCOPY_SOURCE_LOST';
            ready.urgent.push(encodeJson(FrameType.ERROR, seq, { code, message: (error as Error).message }));
            pump();
          },
        );
      }
    };
    const onFrame = (frame: Frame) => {
      if (!helloed) {
        if (frame.type !== FrameType.HELLO) throw new Error(`frame ${frame.type} before HELLO`);
        const hello = decodeJson<{ session?: string; role?: string }>(frame);
        if (hello.session !== options.session || hello.role !== 'relay') throw new Error(`the relay of another move answered (session ${JSON.stringify(hello.session)})`);
        helloed = true;
        return;
      }
      switch (frame.type) {
        case FrameType.GET:
          waiting.push({ seq: frame.seq, get: decodeGet(frame) });
          startReads();
          return;
        case FrameType.DONE:
          write(encodeFrame(FrameType.DONE, frame.seq));
          end({ outcome: 'done' });
          return;
        case FrameType.PING:
          write(encodeFrame(FrameType.PONG, frame.seq));
          return;
        case FrameType.PONG:
          return;
        case FrameType.ERROR:
          throw new Error(`the relay reported: ${decodeJson<{ message?: string }>(frame).message ?? 'an error'}`);
        default:
          throw new Error(`unexpected frame type ${frame.type}`);
      }
    };
    stream.on('data', (chunk: Buffer) => {
      if (finished) return;
      try {
        for (const frame of decoder.push(chunk)) onFrame(frame);
      } catch (error) {
        end({ outcome: 'closed', reason: (error as Error).message });
      }
    });
    stream.on('drain', pump);
    stream.once('close', () => end({ outcome: 'closed', reason: 'the connection closed' }));
    stream.on('error', (error: Error) => end({ outcome: 'closed', reason: error.message }));
    write(encodeJson(FrameType.HELLO, 0, { session: options.session, role: 'source' }));
  });
}
