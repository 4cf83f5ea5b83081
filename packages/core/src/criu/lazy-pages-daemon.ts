/**
 * `criu lazy-pages`: the destination half of post-copy. It serves the restored tasks' page faults (userfaultfd) by
 * fetching pages from the source's page server, and pulls the rest in the background; it exits 0 once every page
 * has arrived. Without a page server it takes the pages from the images directory instead (CRIU 4.2.1 hangs when
 * those images have a parent, so hash-pre-copy cannot restore lazily from its parent chain). The RPC interface has no lazy-pages mode, so this one is a CLI child.
 *
 * Contract: start() resolves once the daemon listens on its socket in workDir (restore --lazy-pages connects there;
 * the restore must use the same work dir). The caller owns the child: kill() it on rollback.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startCriuChild, type CriuChild } from './criu-child';

export interface LazyPagesDaemonOptions {
  criuPath: string;
  imagesDir: string;
  workDir: string;
  /** The source's page server (reachable from here, e.g. through a tunnel on 127.0.0.1); omitted: local images. */
  pageServer?: { address: string; port: number };
  logFile?: string;
  startTimeoutMs?: number;
}

/** `exited` resolving with code 0 means every page was transferred. */
export type LazyPagesDaemon = CriuChild;

/** Starts `criu lazy-pages`; resolves once it listens in workDir (see the header for who owns the child). */
export function startLazyPagesDaemon(options: LazyPagesDaemonOptions): Promise<LazyPagesDaemon> {
  const logFile = options.logFile ?? 'lazy-pages.log';
  return startCriuChild({
    criuPath: options.criuPath,
    args: [
      'lazy-pages',
      ...(options.pageServer ? ['--page-server', '--address', options.pageServer.address, '--port', String(options.pageServer.port)] : []),
      '-D',
      options.imagesDir,
      '-W',
      options.workDir,
      '-o',
      logFile,
      '-v4',
    ],
    stdio: 'ignore',
    ready: () => existsSync(join(options.workDir, 'lazy-pages.socket')),
    logPath: join(options.workDir, logFile),
    what: 'criu lazy-pages',
    code: 'ERR_CRIU_RESTORE_FAILED',
    hint: 'Lazy pages need userfaultfd and fs.pipe-max-size >= 4194304; run `ferry doctor`.',
    startTimeoutMs: options.startTimeoutMs,
  });
}
