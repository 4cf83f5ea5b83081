/**
 * A connection to a lazy dump's page server (post-copy). CRIU reads a clean end of it as "every page served" and
 * kills the source tree; so the process holding it must never end it cleanly by dying. With SO_LINGER 0 the kernel
 * resets it instead when this process dies, CRIU's lazy transfer fails, and CRIU lets the source tasks go: the
 * source survives the death of whoever relayed its pages.
 */
import type { Socket } from 'node:net';
import { resetOnClose } from '@ferry/native';

/** Call once the socket is connected. */
export function resetPageServerLinkOnDeath(socket: Socket): void {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd === 'number' && fd >= 0) resetOnClose(fd);
}
