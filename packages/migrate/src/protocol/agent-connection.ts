/** A live connection to a destination's `ferry agent`: the protocol peer plus the byte tunnels a migration needs. */
import type { Socket } from 'node:net';
import type { AgentPeer } from './agent-peer';

export interface AgentConnection {
  peer: AgentPeer;
  close(): void;
  /**
   * Joins `local` (a connection to or from CRIU's page server, made in a private network namespace) to the unix socket
   * at remotePath on the destination (in a 0700 directory there). By default ends from the destination do not end
   * `local`: only finishTunnels() does (CRIU reads a clean end of a lazy dump's link as "every page served").
   * `remoteEnd: 'pass'` (a dump's page client streaming to the destination's page server) passes the destination's
   * end on: `local` is ended after what arrived, and reset if CRIU still has not closed it a moment later (a dump
   * blocked writing pages nobody reads would otherwise wait for its deadline).
   * `remoteEnd: 'resume'` (post-copy's link to a page-link keeper): the stream survives the SSH connection; a broken
   * link is re-dialed over new connections (onLinkLost tells of each attempt) until finishTunnels().
   */
  tunnelToSocket(remotePath: string, local: Socket, options?: { remoteEnd?: 'hold' | 'pass' | 'resume'; onLinkLost?: (attempt: number, error?: Error) => void }): Promise<void>;
  /** Bytes sent to the destination through tunnels so far. */
  tunnelledBytes(): number;
  /** Ends every tunnelled connection: 'clean' (FIN) or 'reset' (RST); later ones get the same. */
  finishTunnels(how: 'clean' | 'reset'): void;
}
