/**
 * `criu lazy-pages`: the destination half of post-copy. It serves the restored tasks' page faults (userfaultfd) by
 * fetching pages from the source's page server, and pulls the rest in the background; it exits 0 once every page
 * has arrived. The RPC interface has no lazy-pages mode, so this one is a CLI child.
 *
 * Contract: start() resolves once the daemon listens on its socket in workDir (restore --lazy-pages connects there;
 * the restore must use the same work dir). The caller owns the child: kill() it on rollback.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { readLogExcerpt } from './criu-log';

export interface LazyPagesDaemonOptions {
  criuPath: string;
  imagesDir: string;
  workDir: string;
  /** The source's page server (reachable from here, e.g. through a tunnel on 127.0.0.1). */
  address: string;
  port: number;
  logFile?: string;
  startTimeoutMs?: number;
}

export interface LazyPagesDaemon {
  pid: number;
  logPath: string;
  /** Resolves when the daemon exits: code 0 means every page was transferred. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

const SOCKET = 'lazy-pages.socket';

export async function startLazyPagesDaemon(options: LazyPagesDaemonOptions): Promise<LazyPagesDaemon> {
  const logFile = options.logFile ?? 'lazy-pages.log';
  const logPath = join(options.workDir, logFile);
  const child = spawn(
    options.criuPath,
    ['lazy-pages', '--page-server', '--address', options.address, '--port', String(options.port), '-D', options.imagesDir, '-W', options.workDir, '-o', logFile, '-v4'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (err) {
    throw new FerryError('ERR_CRIU_SPAWN_FAILED', `cannot start criu lazy-pages: ${(err as Error).message}`, { cause: err });
  }
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let gone: { code: number | null } | undefined;
  void exited.then((e) => (gone = e));
  while (!existsSync(join(options.workDir, SOCKET))) {
    if (gone || Date.now() > deadline) {
      child.kill('SIGKILL');
      const excerpt = readLogExcerpt(logPath);
      throw new FerryError('ERR_CRIU_RESTORE_FAILED', `criu lazy-pages did not start (${gone ? `exit ${gone.code}` : 'timed out'}; log: ${logPath})${excerpt?.lines.length ? `\n  ${excerpt.lines.join('\n  ')}` : ''}`, {
        hint: 'Lazy pages need userfaultfd and fs.pipe-max-size >= 4194304; run `ferry doctor`.',
        details: { logPath, logExcerpt: excerpt?.lines },
      });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    pid: child.pid ?? -1,
    logPath,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
