/**
 * `criu page-server` as a child process: the destination end of a dump that streams its memory pages over the
 * network (stop-and-copy without a detour through the source's disk). It writes pagemap and pages images into
 * imagesDir and exits 0 when the dump's connection ends.
 *
 * With `socket` (a PageSocketPair) it serves `--ps-socket 3` and listens nowhere: ferry writes the dump's page
 * stream into the pair's ferry end. The pair's criuEnd is closed here once spawned; ferryEnd stays the caller's.
 * (A clean close before the dump's PS_IOV_CLOSE is a failure to CRIU here, "The data were not flushed", so the held
 * copy of ferry's end is optional: `holdFerryEnd`.)
 *
 * Why a CLI child rather than RPC PAGE_SERVER: the RPC starts a daemon whose pid it reports as 0 in swrk mode, and
 * ferry must be able to kill a page server that never got its dump (rollback).
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCriuChild, type CriuChild } from './criu-child';
import { CRIU_PS_SOCKET_FD, pageSocketStdio, type PageSocketPair } from './page-socket';

export interface PageServerProcess extends CriuChild {
  /** 0 with a socket pair. */
  port: number;
}

export type PageServerEndpoint = { address: string; port: number } | { socket: PageSocketPair; holdFerryEnd?: boolean };

/**
 * Starts `criu page-server` on address:port, or on a socket pair's CRIU end, writing into imagesDir; resolves once
 * it is ready. The caller owns the child.
 */
export async function startPageServerProcess(
  options: {
    criuPath: string;
    imagesDir: string;
    workDir: string;
    startTimeoutMs?: number;
  } & PageServerEndpoint,
): Promise<PageServerProcess> {
  const pair = 'socket' in options ? options.socket : undefined;
  const listen = 'address' in options ? options : undefined;
  // CRIU writes one byte to its status fd once it listens; a file is what it gets (see the runc adapter).
  const statusPath = join(options.workDir, 'page-server.status');
  const statusFd = openSync(statusPath, 'w', 0o600);
  try {
    const child = await startCriuChild({
      criuPath: options.criuPath,
      args: [
        'page-server',
        '-D',
        options.imagesDir,
        '-W',
        options.workDir,
        ...(listen ? ['--address', listen.address, '--port', String(listen.port)] : ['--ps-socket', String(CRIU_PS_SOCKET_FD)]),
        '--status-fd',
        String(pair ? 6 : 3),
        '-o',
        'page-server.log',
        '-v4',
      ],
      // With a pair: fd 3 CRIU's end, fd 4 the held ferry end (or nothing), fd 6 the status file.
      stdio: pair ? [...pad(pageSocketStdio(pair, 'socket' in options && options.holdFerryEnd === true), 6), statusFd] : ['ignore', 'ignore', 'ignore', statusFd],
      ready: () => statSync(statusPath).size > 0,
      logPath: join(options.workDir, 'page-server.log'),
      what: 'criu page-server',
      code: 'ERR_CRIU_PAGE_SERVER_FAILED',
      hint: 'Check the CRIU installation with `ferry doctor` on the destination.',
      startTimeoutMs: options.startTimeoutMs,
    });
    pair?.criuEnd.close();
    return { ...child, port: listen?.port ?? 0 };
  } finally {
    closeSync(statusFd);
  }
}

function pad(stdio: ('ignore' | number)[], length: number): ('ignore' | number)[] {
  const out = [...stdio];
  while (out.length < length) out.push('ignore');
  return out;
}
