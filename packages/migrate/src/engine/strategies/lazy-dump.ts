/**
 * A lazy dump (post-copy, hash-pre-copy): CRIU freezes the tree, writes everything but the memory pages, and then
 * holds the frozen tasks while its page server waits on 127.0.0.1:PORT of a private network namespace (pages/
 * dump-netns.ts: reachable by ferry only). A client that ends that connection cleanly makes CRIU finish and kill the
 * source tree; a reset (or killing CRIU) lets the tasks go again.
 *
 * The dump's processes are journaled with their start times as soon as it is ready, so that recovery can end them
 * should this process die while they hold the container.
 */
import type { Socket } from 'node:net';
import { FerryError, freeLocalPort } from '@ferry/core';
import { assertLazyDumpable, createDumpNetns } from '../../pages/dump-netns';
import { processesMarked } from '../../journal/proc-identity';
import { faultPoint } from '../fault-points';
import type { MoveContext } from '../move-context';

export interface LazyDump {
  port: number;
  /** Settles when CRIU's page server is up and the images are complete (the tasks are frozen). */
  ready: Promise<void>;
  /** Settles when the dump is over: CRIU ended the source (resolves) or let it go (rejects). */
  done: Promise<unknown>;
  /** A connection to the page server (only ferry can make one). */
  dial(): Promise<Socket>;
}

export async function startLazyDump(ctx: MoveContext): Promise<LazyDump> {
  const { imagesDir, workDir } = ctx.dumpDirs();
  assertLazyDumpable(ctx.container.pid, ctx.name);
  const port = await freeLocalPort();
  const netns = await createDumpNetns();
  const stop = new AbortController();
  let onReady!: () => void;
  const isReady = new Promise<void>((resolve) => (onReady = resolve));
  ctx.journal.hold({ kind: 'dump', marker: imagesDir, initPid: ctx.container.pid, port });
  const done = ctx.adapter.checkpoint(ctx.container.ref, {
    imagesDir,
    workDir,
    ...ctx.criuFlags,
    lazyPages: { address: '127.0.0.1', port, onReady: () => onReady() },
    netnsPath: netns.path,
    signal: stop.signal,
    // Read before the freeze: the runtime need not read them again while clients wait.
    known: ctx.known,
  });
  done.catch(() => undefined);
  void done.finally(() => netns.close()).catch(() => undefined);
  // Killing the dump makes the adapter thaw what CRIU froze; the steps registered earlier then resume the rest.
  ctx.revert.add('stop the lazy dump', async () => {
    stop.abort();
    await done.catch(() => undefined);
  });
  const ready = Promise.race([
    isReady,
    done.then(() => {
      throw new FerryError('ERR_CRIU_DUMP_FAILED', 'the lazy dump ended before its page server was ready');
    }),
  ]).then(async () => {
    ctx.journal.hold({ kind: 'dump', pids: processesMarked(imagesDir) });
    await faultPoint(ctx.request.faults, 'dump-ready');
  });
  ready.catch(() => undefined);
  return { port, ready, done, dial: () => netns.dial(port) };
}
