/**
 * `criu lazy-pages`: the destination half of post-copy. It serves the restored tasks' page faults (userfaultfd) by
 * fetching pages from a page server, and pulls the rest in the background; it exits 0 once every page has arrived.
 * Without a page server it takes the pages from the images directory instead (CRIU 4.2.1 hangs when those images
 * have a parent, so hash-pre-copy cannot restore lazily from its parent chain). The RPC interface has no lazy-pages
 * mode, so this one is a CLI child.
 *
 * The page server is either an address (legacy: a TCP connection anybody local could have made) or a PageSocketPair
 * (`--ps-socket 3`, nothing listens): ferry's page relay answers on the pair's ferry end, and the daemon also holds a
 * copy of that end (fd 4), so the relay's death never reads as a clean close and a new relay can reclaim the end.
 *
 * Contract: start() resolves once the daemon listens on lazy-pages.socket in workDir (restore --lazy-pages, or
 * ferry's proxy of that socket, connects there). The caller owns the child: kill() it on rollback. With a pair, the
 * daemon's copy of criuEnd is closed in this process once spawned (ferryEnd stays the caller's); on failure both
 * stay the caller's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startCriuChild, type CriuChild } from './criu-child';
import { CRIU_PS_SOCKET_FD, pageSocketStdio, type PageSocketPair } from './page-socket';

export interface LazyPagesDaemonOptions {
  criuPath: string;
  imagesDir: string;
  workDir: string;
  /** The page server: an address reachable from here, or a socket pair (`--ps-socket`); omitted: local images. */
  pageServer?: { address: string; port: number } | { socket: PageSocketPair };
  logFile?: string;
  startTimeoutMs?: number;
  /** Own session (default true with a socket pair: the daemon must outlive the relay that started it). */
  detached?: boolean;
}

/** `exited` resolving with code 0 means every page was transferred. */
export type LazyPagesDaemon = CriuChild;

/** Starts `criu lazy-pages`; resolves once it listens in workDir (see the header for who owns the child). */
export async function startLazyPagesDaemon(options: LazyPagesDaemonOptions): Promise<LazyPagesDaemon> {
  const logFile = options.logFile ?? 'lazy-pages.log';
  const ps = options.pageServer;
  const pair = ps && 'socket' in ps ? ps.socket : undefined;
  const server = ps && 'address' in ps ? ps : undefined;
  const daemon = await startCriuChild({
    criuPath: options.criuPath,
    args: [
      'lazy-pages',
      ...(server ? ['--page-server', '--address', server.address, '--port', String(server.port)] : []),
      ...(pair ? ['--page-server', '--ps-socket', String(CRIU_PS_SOCKET_FD)] : []),
      '-D',
      options.imagesDir,
      '-W',
      options.workDir,
      '-o',
      logFile,
      '-v4',
    ],
    stdio: pair ? pageSocketStdio(pair, true) : 'ignore',
    detached: options.detached ?? pair !== undefined,
    ready: () => existsSync(join(options.workDir, 'lazy-pages.socket')),
    logPath: join(options.workDir, logFile),
    what: 'criu lazy-pages',
    code: 'ERR_CRIU_RESTORE_FAILED',
    hint: 'Lazy pages need userfaultfd and fs.pipe-max-size >= 4194304; run `ferry doctor`.',
    startTimeoutMs: options.startTimeoutMs,
  });
  pair?.criuEnd.close();
  return daemon;
}
