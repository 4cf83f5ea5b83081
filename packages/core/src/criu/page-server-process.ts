/**
 * `criu page-server` as a child process: the destination end of a dump that streams its memory pages over the
 * network (stop-and-copy without a detour through the source's disk). It writes pagemap and pages images into
 * imagesDir and exits 0 when the dump's connection ends.
 *
 * Why a CLI child rather than RPC PAGE_SERVER: the RPC starts a daemon whose pid it reports as 0 in swrk mode, and
 * ferry must be able to kill a page server that never got its dump (rollback).
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCriuChild, type CriuChild } from './criu-child';

export interface PageServerProcess extends CriuChild {
  port: number;
}

/**
 * Starts `criu page-server` on address:port writing into imagesDir; resolves once it listens. The caller owns the
 * child.
 */
export async function startPageServerProcess(options: {
  criuPath: string;
  imagesDir: string;
  workDir: string;
  address: string;
  port: number;
  startTimeoutMs?: number;
}): Promise<PageServerProcess> {
  // CRIU writes one byte to its status fd once it listens; a file is what it gets (see the runc adapter).
  const statusPath = join(options.workDir, 'page-server.status');
  const statusFd = openSync(statusPath, 'w', 0o600);
  try {
    const child = await startCriuChild({
      criuPath: options.criuPath,
      args: ['page-server', '-D', options.imagesDir, '-W', options.workDir, '--address', options.address, '--port', String(options.port), '--status-fd', '3', '-o', 'page-server.log', '-v4'],
      stdio: ['ignore', 'ignore', 'ignore', statusFd],
      ready: () => statSync(statusPath).size > 0,
      logPath: join(options.workDir, 'page-server.log'),
      what: 'criu page-server',
      code: 'ERR_CRIU_PAGE_SERVER_FAILED',
      hint: 'Check the CRIU installation with `ferry doctor` on the destination.',
      startTimeoutMs: options.startTimeoutMs,
    });
    return { ...child, port: options.port };
  } finally {
    closeSync(statusFd);
  }
}
