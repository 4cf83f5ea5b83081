/**
 * The source's part of post-copy after the restore: dial the destination relay, answer its GETs from the frozen
 * memory, and dial again whenever the link breaks, until the relay says every page has arrived. Nothing here holds
 * state a crash would lose: a new guardian calls this again and the relay re-sends what it still needs.
 */
import type { Duplex } from 'node:stream';
import { FerryError } from '@ferry/core';
import type { SshConnection } from '../transport/ssh-connection';
import { serveLink, type LinkStats } from './link-responder';
import { LINK_SOCKET } from './relay';
import type { FrozenSourceMemory } from './source-memory';
import { join } from 'node:path';

export type SourcePagesEvent =
  | { type: 'link-dialed'; attempt: number }
  | { type: 'link-lost'; reason: string; attempt: number }
  | { type: 'pages-served'; gets: number; bytesSent: number };

export interface ServeSourcePagesOptions {
  migrationId: string;
  memory: Pick<FrozenSourceMemory, 'read'>;
  /** Opens a new connection to the relay's link socket (through SSH: dialRelayOverSsh). */
  dial: () => Promise<Duplex>;
  /** Wait between failed attempts. Default 500 ms. */
  retryMs?: number;
  /** Reads in flight. */
  concurrency?: number;
  signal?: AbortSignal;
  onEvent?: (event: SourcePagesEvent) => void;
}

/**
 * Resolves once the relay has said every page arrived (the source may then end its lazy dump). Rejects only when
 * aborted: a broken link, a failed dial, a relay that restarts are all waited out (the design's post-copy window:
 * only the source's own death ends it, and then there is nobody left to reject).
 */
export async function serveSourcePages(options: ServeSourcePagesOptions): Promise<LinkStats> {
  const stats: LinkStats = { gets: 0, bytesSent: 0 };
  const retryMs = options.retryMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw new FerryError('ERR_ABORTED', 'serving post-copy pages was interrupted', { hint: 'The source stays frozen; run `ferry recover`.' });
    let stream: Duplex;
    try {
      stream = await options.dial();
    } catch (error) {
      options.onEvent?.({ type: 'link-lost', reason: `dial: ${(error as Error).message}`, attempt });
      await new Promise((r) => setTimeout(r, retryMs));
      continue;
    }
    options.onEvent?.({ type: 'link-dialed', attempt });
    const onAbort = () => stream.destroy();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const outcome = await serveLink(stream, { session: options.migrationId, readPages: (get) => options.memory.read(get), concurrency: options.concurrency }, stats);
    options.signal?.removeEventListener('abort', onAbort);
    options.onEvent?.({ type: 'pages-served', gets: stats.gets, bytesSent: stats.bytesSent });
    if (outcome.outcome === 'done') return stats;
    options.onEvent?.({ type: 'link-lost', reason: outcome.reason, attempt });
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

/**
 * A connection to the relay's link socket on the destination, as an SSH direct-streamlocal channel: sshd connects
 * to the unix socket as the logged-in user (root), nothing listens on any port.
 */
export function dialRelayOverSsh(connection: SshConnection, relayDir: string): Promise<Duplex> {
  return connection.forwardOutStreamLocal(join(relayDir, LINK_SOCKET));
}
