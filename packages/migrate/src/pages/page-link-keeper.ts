/**
 * The destination's end of a post-copy page link that survives a broken connection (issue #13 item 3). A process of
 * its own (own session, stdio on a log file), so that neither sshd nor the agent dying ends it: it holds ferry's end
 * of the lazy-pages daemon's page socket (fd 3) and serves it to whatever connects to `pages.sock` in the move's
 * 0700 link directory (the source's SSH direct-streamlocal channel, and after a break the next one), through the
 * resumable framing of resumable-stream.ts. While no link is attached, the daemon's requests wait here and the
 * restored tasks that fault wait in the kernel: nothing reads back as zeros.
 *
 * It never ends the daemon's side on a failure: CRIU would read that as the end of the pages, and the uffd would be
 * let go with pages missing. It just exits with GAVE_UP, and its owner (the agent watching it, or the next agent:
 * orphaned-pages.ts) removes the copy first and only then kills the daemon. It gives up when no link comes back
 * within the grace period (the source host is gone), when the source says so (ABORT: its guardian died, so CRIU's end
 * was reset and can never be resumed), or on SIGTERM (the owner rolled the move back).
 *
 * Exit codes: 0 the daemon's side ended (it is done, or died: its exit status tells), GAVE_UP otherwise (also when
 * the source's side ends first: its CRIU is gone, and the daemon must not read that end as the end of the pages).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { FerryError, processStartTime, type FdHandle } from '@ferry/core';
import { ResumableEnd } from './resumable-stream';

export const KEEPER_GAVE_UP = 3;
export const KEEPER_SOCKET = 'pages.sock';
export const KEEPER_LOG = 'keeper.log';
/** How long the first link may take to come (the source asks for the link just before it connects). */
const FIRST_LINK_MS = 60_000;
/** How long a broken link may stay broken before the source host counts as gone. */
export const DEFAULT_GRACE_MS = 60_000;
/** After the daemon's end closed: time for the END to reach the source before this process exits. */
const FLUSH_MS = 500;

export interface KeeperOptions {
  graceMs?: number;
}

/** The hidden `ferry page-link-keeper --dir DIR` command's body: resolves with the exit code. */
export function runPageLinkKeeper(dir: string, options: KeeperOptions = {}): Promise<number> {
  const graceMs = options.graceMs ?? envGrace() ?? DEFAULT_GRACE_MS;
  const log = (line: string) => appendFileSync(join(dir, KEEPER_LOG), `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
  // Half-open allowed: Node must not end the daemon's side on its own (CRIU reads an end as the end of the pages).
  const daemonEnd = new Socket({ fd: 3, readable: true, writable: true, allowHalfOpen: true });
  daemonEnd.setNoDelay(true);
  const end = new ResumableEnd(daemonEnd);
  const socketPath = join(dir, KEEPER_SOCKET);
  rmSync(socketPath, { force: true });
  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let links = 0;
    let over = false;
    const exit = (code: number, why: string) => {
      if (over) return;
      over = true;
      log(`${code === 0 ? 'done' : 'giving up'}: ${why} (links ${links}, ${end.bytesSent} bytes to the source, ${end.bytesReceived} from it)`);
      clearTimeout(timer);
      server.close();
      rmSync(socketPath, { force: true });
      resolve(code);
    };
    const wait = (ms: number, what: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => exit(KEEPER_GAVE_UP, `${what} within ${ms} ms: the source host counts as gone`), ms);
    };
    const server = createServer({ allowHalfOpen: true }, (link) => {
      links++;
      link.on('error', () => undefined);
      end.attach(link).then(
        () => {
          clearTimeout(timer);
          log(`link ${links} attached (${end.bytesReceived} bytes received so far)`);
        },
        (err: unknown) => log(`link ${links} not attached: ${(err as Error).message}`),
      );
    });
    server.on('error', (err) => exit(KEEPER_GAVE_UP, `cannot listen on ${socketPath}: ${err.message}`));
    server.listen(socketPath, () => log(`listening (grace ${graceMs} ms)`));
    wait(FIRST_LINK_MS, 'no link came');
    end.on('link-lost', () => {
      log('link lost; waiting for the source to reconnect');
      wait(graceMs, 'no new link came');
    });
    let daemonDone = false;
    end.on('remote-end', () => {
      // The source ends CRIU's side only after the daemon has every page (and has closed its side). Before that,
      // the end means the source's CRIU is gone: an end passed on would let the daemon go with pages missing.
      if (!daemonDone) return exit(KEEPER_GAVE_UP, "the source's side ended before the lazy-pages daemon had every page");
      daemonEnd.end();
      exit(0, 'the source ended the stream');
    });
    end.on('remote-abort', () => exit(KEEPER_GAVE_UP, 'the source abandoned the stream (its end of CRIU was reset)'));
    end.on('error', (err: Error) => exit(KEEPER_GAVE_UP, `the stream cannot be resumed: ${err.message}`));
    // The daemon's side ended (it finished, or died: its owner tells which from its exit status).
    daemonEnd.on('end', () => {
      daemonDone = true;
      setTimeout(() => exit(0, "the lazy-pages daemon's side ended"), FLUSH_MS).unref();
    });
    daemonEnd.on('error', (err) => exit(0, `the lazy-pages daemon's side failed: ${err.message}`));
    process.once('SIGTERM', () => exit(KEEPER_GAVE_UP, 'told to stop (the move is undone here)'));
  });
}

function envGrace(): number | undefined {
  const v = Number(process.env.FERRY_PAGE_LINK_GRACE_MS);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

export interface SpawnedKeeper {
  pid: number;
  startTime: string;
  socketPath: string;
  /** Resolves with the exit code (null: killed by a signal). Only while this process is its parent. */
  exited: Promise<number | null>;
  /** Resolves once it listens; rejects if it exits (or does not listen within 10 s) first. */
  ready: Promise<void>;
  stop(): void;
}

const READY_MS = 10_000;

/**
 * Starts `command page-link-keeper --dir DIR` (command: how to run ferry's CLI) detached, with `ferryEnd` as its fd 3
 * (FERRY_PAGE_LINK_GRACE_MS in `env` sets its grace).
 * The caller keeps its own copy of ferryEnd until the daemon has started with it, then closes it.
 */
export function spawnPageLinkKeeper(dir: string, ferryEnd: FdHandle, command: readonly string[], env: NodeJS.ProcessEnv = process.env): SpawnedKeeper {
  const logFd = openSync(join(dir, KEEPER_LOG), 'a', 0o600);
  const child = spawn(command[0]!, [...command.slice(1), 'page-link-keeper', '--dir', dir], { stdio: ['ignore', logFd, logFd, ferryEnd.fd], detached: true, env });
  closeSync(logFd);
  child.unref();
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  const pid = child.pid ?? -1;
  const socketPath = join(dir, KEEPER_SOCKET);
  let ended = false;
  void exited.then(() => (ended = true));
  const ready = (async () => {
    for (const deadline = Date.now() + READY_MS; !existsSync(socketPath); ) {
      if (ended || Date.now() > deadline) {
        throw new FerryError('ERR_AGENT_FAILED', `the page link keeper (pid ${pid}) ${ended ? 'exited' : 'did not listen'} before the link was made`, { hint: `See ${join(dir, KEEPER_LOG)}.` });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  ready.catch(() => undefined);
  return {
    pid,
    startTime: processStartTime(pid) ?? '',
    socketPath,
    exited,
    ready,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
