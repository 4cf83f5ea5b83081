/**
 * Ends a lazy dump whose page server nobody needs (hash-pre-copy: the destination already holds every page). CRIU's
 * page server in a lazy dump waits for the destination's lazy-pages daemon; a client that connects and closes
 * cleanly tells it the transfer is over, and CRIU then finishes the dump and ends the source tree, as after a
 * post-copy. Called only once the destination has committed.
 */
import type { Socket } from 'node:net';

/** `dial` connects to the page server (in the dump's private network namespace: pages/dump-netns.ts). */
export async function endLazyDump(dial: () => Promise<Socket>, timeoutMs = 10_000): Promise<void> {
  const socket = await dial();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the lazy dump's page server did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.end();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
