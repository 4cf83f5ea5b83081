/**
 * The destination's side of a private page path (issue 14 item 2). CRIU's process here (the lazy-pages daemon of a
 * post-copy, the page server of a streamed stop-and-copy) gets one end of a TCP pair in a private network namespace
 * (`--ps-socket`) instead of a TCP port; the other end is joined to a unix socket in the migration's 0700 directory,
 * which the source reaches through its SSH connection (OpenSSH's direct-streamlocal: sshd connects as the logged-in
 * root). No port listens; no local user but root can connect to the socket; and the listener goes away with the first
 * connection it accepts.
 *
 * Ends pass through both ways: CRIU ending its side reaches the source as EOF, and the source's tunnel ending (or
 * being reset) reaches CRIU as EOF, as it did over a TCP tunnel.
 */
import { rmSync } from 'node:fs';
import { Socket, connect } from 'node:net';
import { join } from 'node:path';
import { acceptSocket, createPageSocketPair, ensurePrivateDir, listenUnix, type FdHandle, type PageSocketPair } from '@ferry/core';
import { spawnPageLinkKeeper, type SpawnedKeeper } from './page-link-keeper';

/** How long the source has to connect once it asked for the link. */
const ACCEPT_TIMEOUT_MS = 60_000;
export const PAGE_LINK_SOCKET = 'pages.sock';

export interface DestinationPageLink {
  /** What the source's SSH connection opens (direct-streamlocal). */
  readonly socketPath: string;
  /** For the CRIU start function (it takes criuEnd); ferryEnd stays this link's. */
  readonly pair: PageSocketPair;
  /**
   * Call once CRIU has started with `pair`: joins the source's connection (when it comes) to ferry's end; when none
   * comes in time, ferry's end is closed (CRIU reads EOF).
   */
  attach(): void;
  close(): void;
  /** Set when the link is resumable: the process that holds ferry's end (page-link-keeper.ts). */
  keeper?: SpawnedKeeper;
}

export async function openPageLink(dir: string): Promise<DestinationPageLink> {
  ensurePrivateDir(dir);
  const socketPath = join(dir, PAGE_LINK_SOCKET);
  rmSync(socketPath, { force: true });
  const listener = listenUnix(socketPath, 1);
  let pair: PageSocketPair;
  try {
    pair = await createPageSocketPair();
  } catch (err) {
    listener.close();
    rmSync(socketPath, { force: true });
    throw err;
  }
  let closing = false;
  let waiting = true;
  // The listener is closed only once no pool thread waits on it (its fd number could be reused meanwhile).
  const accepted = acceptSocket(listener, ACCEPT_TIMEOUT_MS).finally(() => {
    waiting = false;
    listener.close();
    rmSync(socketPath, { force: true });
  });
  accepted.catch(() => undefined);
  const sockets: Socket[] = [];
  let attached = false;
  const link: DestinationPageLink = {
    socketPath,
    pair,
    attach() {
      if (attached) return;
      attached = true;
      accepted.then(
        (remote) => {
          if (closing) remote.close();
          else join2(wrap(pair.ferryEnd), wrap(remote), sockets);
        },
        // CRIU's process then reads EOF and ends: the move fails there and is undone.
        () => link.close(),
      );
    },
    close() {
      if (waiting && !closing) wake(socketPath);
      closing = true;
      if (!pair.criuEnd.closed) pair.criuEnd.close();
      if (!pair.ferryEnd.closed) pair.ferryEnd.close();
      for (const s of sockets) s.end();
    },
  };
  return link;
}

/**
 * Post-copy's link, resumable (page-link-keeper.ts): ferry's end goes to a keeper process that outlives this agent
 * and the SSH connection, and serves every reconnection of the source at `pages.sock` in `dir` (0700).
 */
export async function openResumablePageLink(dir: string, command: readonly string[]): Promise<DestinationPageLink> {
  ensurePrivateDir(dir);
  const pair = await createPageSocketPair();
  let keeper: SpawnedKeeper;
  try {
    keeper = spawnPageLinkKeeper(dir, pair.ferryEnd, command);
    await keeper.ready.catch((err: unknown) => {
      keeper.stop();
      throw err;
    });
  } catch (err) {
    pair.ferryEnd.close();
    pair.criuEnd.close();
    throw err;
  }
  const dropOurs = () => {
    for (const end of [pair.criuEnd, pair.ferryEnd]) if (!end.closed) end.close();
  };
  return {
    socketPath: keeper.socketPath,
    pair,
    keeper,
    // The daemon holds its copy of ferry's end now, the keeper its own: ours would only keep the stream from ending.
    attach: dropOurs,
    close() {
      keeper.stop();
      dropOurs();
    },
  };
}

/** Ends a pending accept: a connection of our own, dropped at once. */
function wake(socketPath: string): void {
  const s = connect(socketPath);
  s.on('error', () => undefined);
  s.on('connect', () => s.destroy());
}

function wrap(handle: FdHandle): Socket {
  return new Socket({ fd: handle.release(), readable: true, writable: true });
}

/**
 * Pipes a and b into each other, ends passing through. An error ends the other side with a FIN (shutdown), never by
 * closing our fd alone: a lazy-pages daemon holds a copy of ferry's end, so a close would not reach it.
 */
function join2(a: Socket, b: Socket, sockets: Socket[]): void {
  sockets.push(a, b);
  // Small requests and answers, one at a time (CRIU's page protocol): no Nagle wait on either side (a no-op on unix sockets).
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.end());
  b.on('error', () => a.end());
}
