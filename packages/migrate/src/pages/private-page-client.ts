/**
 * A streamed stop-and-copy's page path with no port anyone else can use (issue 14 item 2): the dump runs in a private
 * network namespace where ferry listens for its page client (CRIU connects to 127.0.0.1:PORT there), and that
 * connection is joined through the agent's SSH connection to the destination's page server, whose only socket is a
 * --ps-socket pair behind a unix socket in the migration's 0700 directory (destination-link.ts).
 */
import type { MoveContext } from '../engine/move-context';
import type { PageLinkResult } from '../protocol/agent-messages';
import { createDumpNetns, hasOwnNetns, type NetnsListener } from './dump-netns';

export interface PrivatePageClient {
  /** CRIU's --page-server for the dump, valid inside netnsPath. */
  pageServer: { address: string; port: number };
  netnsPath: string;
  /** Once the dump is over: the listener and the namespace go (the tunnel ends with CRIU's connection). */
  close(): void;
}

/** Undefined for a container on the host's network (dump-netns.ts): its dump then writes the pages here. */
export async function privatePageClient(ctx: Pick<MoveContext, 'peer' | 'connection' | 'id' | 'revert' | 'container'>): Promise<PrivatePageClient | undefined> {
  if (!hasOwnNetns(ctx.container.pid)) return undefined;
  const { socketPath } = await ctx.peer.request<PageLinkResult>('page-server', { migrationId: ctx.id });
  const netns = await createDumpNetns();
  let listener: NetnsListener;
  try {
    listener = await netns.listen();
  } catch (err) {
    netns.close();
    throw err;
  }
  const close = () => {
    listener.close();
    netns.close();
  };
  const step = ctx.revert.add('close the page link', close);
  // A tunnel that cannot be opened drops CRIU's connection: the dump fails and the move is undone.
  // The page server's end (done, or gone with its agent) reaches CRIU: a dump must not wait on a link nobody reads.
  listener.accepted.then((local) => ctx.connection.tunnelToSocket(socketPath, local, { remoteEnd: 'pass' })).catch(() => undefined);
  return {
    pageServer: { address: '127.0.0.1', port: listener.port },
    netnsPath: netns.path,
    close: () => {
      close();
      step.release();
    },
  };
}
