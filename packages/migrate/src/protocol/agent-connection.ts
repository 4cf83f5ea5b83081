/** A live connection to a destination's `ferry agent`: the protocol peer plus the byte tunnels a migration needs. */
import type { AgentPeer } from './agent-peer';

export interface AgentConnection {
  peer: AgentPeer;
  close(): void;
  /** Makes 127.0.0.1:localPort on this host reachable at 127.0.0.1:PORT on the destination; resolves with PORT. */
  tunnelToLocal(localPort: number): Promise<number>;
  /** Bytes sent to the destination through tunnels so far. */
  tunnelledBytes(): number;
  /** Ends every tunnelled connection: 'clean' (FIN) or 'reset' (RST); later ones get the same. */
  finishTunnels(how: 'clean' | 'reset'): void;
  /** A local port whose connections reach 127.0.0.1:remotePort on the destination. */
  forwardToRemote(remotePort: number): Promise<{ localPort: number; close(): void }>;
}
