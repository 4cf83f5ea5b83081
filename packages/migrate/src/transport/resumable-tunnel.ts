/**
 * The source's end of post-copy's resumable page link (issue #13 item 3): CRIU's page-server socket is held here,
 * and the stream to the destination's keeper (pages/page-link-keeper.ts) is carried by resumable-stream.ts over an
 * SSH channel. When that channel dies (the SSH connection cut, sshd's session killed, the link down for a while), a
 * new SSH connection is made and the stream goes on where it stopped: CRIU on both sides sees nothing, and the
 * restored tasks that fault meanwhile wait on the destination. Re-dialing goes on until the move decides the pages'
 * outcome (finish()), whatever that takes: the destination's keeper gives up on its own when the source stays away.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ResumableEnd } from '../pages/resumable-stream';

/** Between two attempts to reach the destination again. */
const REDIAL_MS = 1_000;

export interface RedialedLink {
  link: Duplex;
  /** Closes the connection that carries it. */
  close(): void;
}

export interface ResumableTunnelOptions {
  /** CRIU's end. Never ended here: the owner does (finish), since CRIU reads a clean end as "every page served". */
  local: Socket;
  /** The first link, over the connection the move already has. */
  first: () => Promise<Duplex>;
  /** A link over a new connection. */
  redial: () => Promise<RedialedLink>;
  /** Told of every broken link and failed attempt (for the move's warnings). */
  onLinkLost?: (attempt: number, error?: Error) => void;
}

export interface ResumableTunnel {
  readonly end: ResumableEnd;
  /** The pages' outcome is decided: no more re-dialing; 'reset' also tells the keeper to stop waiting. */
  finish(how: 'clean' | 'reset'): void;
  /** Closes the connections made for re-dialed links. */
  close(): void;
}

export async function openResumableTunnel(options: ResumableTunnelOptions): Promise<ResumableTunnel> {
  const end = new ResumableEnd(options.local);
  // A failing CRIU end is the move's to judge (by the destination's word), not a crash of this process.
  options.local.on('error', () => undefined);
  // A dead link is only reported: the keeper decides when to give up, and the destination's word decides the move.
  end.on('error', () => undefined);
  end.on('remote-abort', () => undefined);
  let finished = false;
  let redialing = false;
  const connections = new Set<RedialedLink>();
  const resume = async () => {
    if (redialing) return;
    redialing = true;
    try {
      for (let attempt = 1; !finished && !remoteEnded && !options.local.destroyed; attempt++) {
        options.onLinkLost?.(attempt);
        let made: RedialedLink | undefined;
        try {
          made = await options.redial();
          connections.add(made);
          await end.attach(made.link);
          return;
        } catch (err) {
          if (made) {
            made.close();
            connections.delete(made);
          }
          options.onLinkLost?.(attempt, err as Error);
        }
        await new Promise((r) => setTimeout(r, REDIAL_MS));
      }
    } finally {
      redialing = false;
    }
  };
  // After the keeper's END (the daemon's side closed: it has every page, or died) the keeper exits and its link with
  // it: nothing is left to resume, the destination's word tells which it was.
  let remoteEnded = false;
  end.on('remote-end', () => (remoteEnded = true));
  end.on('link-lost', () => {
    if (!remoteEnded) void resume();
  });
  const first = await options.first().catch((err: unknown) => {
    options.local.destroy();
    throw err;
  });
  await end.attach(first).catch((err: unknown) => {
    options.local.destroy();
    throw err;
  });
  const close = () => {
    for (const c of connections) c.close();
    connections.clear();
  };
  // Once CRIU's end is closed, what is left to say has been said (or cannot be).
  options.local.once('close', () => setTimeout(close, 1_000).unref());
  return {
    end,
    finish(how) {
      finished = true;
      if (how === 'reset') end.abort();
    },
    close,
  };
}
