/** A live connection to a destination's `ferry agent`: the protocol peer plus the byte tunnels a migration needs. */
import type { Socket } from 'node:net';
import type { AgentPeer } from './agent-peer';

export interface AgentConnection {
  peer: AgentPeer;
  close(): void;
  /**
   * Joins `local` (a connection to or from CRIU's page server, made in a private network namespace) to the unix socket
   * at remotePath on the destination (in a 0700 directory there). Ends from the destination do not end `local`: only
   * finishTunnels() does (CRIU reads a clean end of a lazy dump's link as "every page served").
   */
  tunnelToSocket(remotePath: string, local: Socket): Promise<void>;
  /** Bytes sent to the destination through tunnels so far. */
  tunnelledBytes(): number;
  /** Ends every tunnelled connection: 'clean' (FIN) or 'reset' (RST); later ones get the same. */
  finishTunnels(how: 'clean' | 'reset'): void;
}
