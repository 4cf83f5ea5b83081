/**
 * `criu page-server` as a child process: the destination end of a dump that streams its memory pages over the
 * network (stop-and-copy without a detour through the source's disk). It writes pagemap and pages images into
 * imagesDir and exits 0 when the dump's connection ends.
 *
 * Why a CLI child rather than RPC PAGE_SERVER: the RPC starts a daemon whose pid it reports as 0 in swrk mode, and
 * ferry must be able to kill a page server that never got its dump (rollback).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { readLogExcerpt } from './criu-log';

export interface PageServerProcess {
  pid: number;
  port: number;
  logPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export async function startPageServerProcess(options: {
  criuPath: string;
  imagesDir: string;
  workDir: string;
  address: string;
  port: number;
  startTimeoutMs?: number;
}): Promise<PageServerProcess> {
  const logPath = join(options.workDir, 'page-server.log');
  const statusPath = join(options.workDir, 'page-server.status');
  const statusFd = openSync(statusPath, 'w', 0o600);
  const child = spawn(
    options.criuPath,
    ['page-server', '-D', options.imagesDir, '-W', options.workDir, '--address', options.address, '--port', String(options.port), '--status-fd', '3', '-o', 'page-server.log', '-v4'],
    { stdio: ['ignore', 'ignore', 'ignore', statusFd] },
  );
  closeSync(statusFd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone: { code: number | null } | undefined;
  void exited.then((e) => (gone = e));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  // CRIU writes one byte to the status fd once it listens.
  for (;;) {
    let ready = false;
    try {
      ready = statSync(statusPath).size > 0;
    } catch {
      /* not yet */
    }
    if (ready) break;
    if (gone || Date.now() > deadline) {
      kill();
      const excerpt = readLogExcerpt(logPath);
      throw new FerryError('ERR_CRIU_PAGE_SERVER_FAILED', `criu page-server did not start (${gone ? `exit ${gone.code}` : 'timed out'}; log: ${logPath})${excerpt?.lines.length ? `\n  ${excerpt.lines.join('\n  ')}` : ''}`, {
        hint: 'Check the CRIU installation with `ferry doctor` on the destination.',
        details: { logPath, logExcerpt: excerpt?.lines },
      });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { pid: child.pid ?? -1, port: options.port, logPath, exited, kill };
}
