/**
 * A proxy of the restore's lazy-pages.socket that keeps a copy of every userfaultfd (criu/uffd.c's protocol: per
 * task an int pid, then one byte carrying the uffd by SCM_RIGHTS; a negative pid for a zombie, no fd; at the end the
 * int LAZY_PAGES_RESTORE_FINISHED).
 *
 * Why: when the last holder of a task's userfaultfd closes it, the kernel lets the task's missing pages fault in as
 * zero pages: a lazy-pages daemon that dies leaves its tasks running on wrong memory. While ferry holds a copy, a
 * missing page blocks the faulting task instead, until ferry kills it (the owner decides: UffdProxy only holds).
 * Tasks forked after the restore get userfaultfds the daemon receives from the kernel (UFFD_EVENT_FORK), not over
 * this socket: holdDaemonUffds() copies those out of the daemon with pidfd_getfd.
 *
 * The restore must run with `-W restoreWorkDir` and the daemon with another work dir: each looks for
 * lazy-pages.socket in its own. Both directories are 0700 (only root reaches the sockets).
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { acceptSocket, connectSocket, createSocket, listenUnix, pidfdGetfd, pidfdOpen, StreamSocket, type FdHandle } from '@ferry/core';
import { FerryError } from '@ferry/core';
import { isAlive, type ProcessId } from '../journal/proc-identity';

export const LAZY_PAGES_SOCKET = 'lazy-pages.socket';
/** criu/uffd.c: "ReSTore Finished". */
export const LAZY_PAGES_RESTORE_FINISHED = 0x52535446;

export interface UffdProxyOptions {
  /** `criu restore --lazy-pages -W` of the restore: the proxy listens on its lazy-pages.socket. */
  restoreWorkDir: string;
  /** The lazy-pages daemon's work dir (its lazy-pages.socket); none when ferry's own handler takes the uffds. */
  daemonWorkDir?: string;
}

function checkPrivateDir(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory() || (st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${dir} must be a directory of this user with mode 0700 (the lazy-pages socket goes there)`, {
      hint: 'ferry creates its work directories 0700; something changed this one.',
    });
  }
}

/** Reads the restore's side of criu/uffd.c's protocol up to LAZY_PAGES_RESTORE_FINISHED (passed to head too). */
async function readRestoreTasks(
  restore: StreamSocket,
  sink: { head(data: Buffer): Promise<unknown>; task(pid: number, carrier: Buffer, uffd: FdHandle): Promise<void> },
): Promise<void> {
  for (;;) {
    const head = await restore.read(4, { exact: true });
    if (!head) throw new FerryError('ERR_CRIU_RESTORE_FAILED', 'the restore closed its lazy-pages socket before it finished', { hint: 'See the restore log.' });
    const value = head.data.readInt32LE(0);
    await sink.head(head.data);
    if (value === LAZY_PAGES_RESTORE_FINISHED) break;
    if (value < 0) continue; // a zombie: no userfaultfd follows
    const carrier = await restore.read(1, { exact: true });
    const fd = carrier?.fds[0];
    if (!carrier || !fd) throw new FerryError('ERR_PAGES_PROTOCOL', `the restore sent task ${value} without its userfaultfd`, { hint: 'See the restore log.' });
    for (const extra of carrier.fds.slice(1)) extra.close();
    await sink.task(value, carrier.data, fd);
  }
  await restore.read(1).catch(() => null); // the restore closes after FINISHED
}

export class UffdProxy {
  private readonly restoreCopies: { pid: number; fd: FdHandle }[] = [];
  private daemonCopies: FdHandle[] = [];
  private closed = false;

  private constructor(
    private readonly listener: FdHandle | undefined,
    private readonly options: UffdProxyOptions | undefined,
  ) {}

  /** A proxy that only holds copies of the daemon's userfaultfds (a successor relay: the restore is long done). */
  static holdOnly(): UffdProxy {
    return new UffdProxy(undefined, undefined);
  }

  /** Listens on restoreWorkDir/lazy-pages.socket (without a daemonWorkDir: for receive() only). */
  static listen(options: UffdProxyOptions): UffdProxy {
    checkPrivateDir(options.restoreWorkDir);
    if (options.daemonWorkDir) checkPrivateDir(options.daemonWorkDir);
    return new UffdProxy(listenUnix(join(options.restoreWorkDir, LAZY_PAGES_SOCKET), 1), options);
  }

  /** Tasks whose userfaultfd the proxy holds a copy of (pids in the images). */
  get tasks(): number[] {
    return this.restoreCopies.map((c) => c.pid);
  }

  /** Copies held, in all (restore's and the daemon's). */
  get held(): number {
    return this.restoreCopies.length + this.daemonCopies.length;
  }

  /**
   * Accepts the restore's connection (waiting until close(), or acceptTimeoutMs), connects to the daemon, and passes
   * every message through, keeping a copy of each userfaultfd. Resolves once the restore has said it finished.
   */
  async relay(acceptTimeoutMs = Infinity): Promise<{ tasks: number }> {
    const daemonWorkDir = this.options?.daemonWorkDir;
    if (!daemonWorkDir) throw new Error('UffdProxy.relay: this proxy has no daemon to relay to');
    const restore = await this.acceptRestore(acceptTimeoutMs);
    const toDaemon = await createSocket({ family: 'unix', type: 'stream' });
    let daemon: StreamSocket | undefined;
    try {
      await connectSocket(toDaemon, 'unix', join(daemonWorkDir, LAZY_PAGES_SOCKET));
      daemon = StreamSocket.adopt(toDaemon);
      const to = daemon;
      await readRestoreTasks(restore, {
        head: (data) => to.write(data),
        task: async (pid, carrier, fd) => {
          this.restoreCopies.push({ pid, fd });
          await to.write(carrier, [fd]);
        },
      });
      return { tasks: this.restoreCopies.length };
    } finally {
      restore.close();
      daemon?.close();
      if (!daemon) toDaemon.close();
    }
  }

  /**
   * Takes the daemon's place: accepts the restore's connection and hands each task's userfaultfd to `onTask`, which
   * owns it from then on (no copy stays here). Resolves once the restore has said it finished.
   */
  async receive(onTask: (pid: number, uffd: FdHandle) => void, acceptTimeoutMs = Infinity): Promise<{ tasks: number }> {
    const restore = await this.acceptRestore(acceptTimeoutMs);
    let tasks = 0;
    try {
      await readRestoreTasks(restore, {
        head: async () => undefined,
        task: async (pid, _carrier, fd) => {
          tasks++;
          onTask(pid, fd);
        },
      });
      return { tasks };
    } finally {
      restore.close();
    }
  }

  /** The restore's connection (waiting until close(), or acceptTimeoutMs); the listener closes then. */
  private async acceptRestore(acceptTimeoutMs: number): Promise<StreamSocket> {
    const listener = this.listener;
    if (!listener) throw new Error('UffdProxy: this proxy does not listen');
    const deadline = Date.now() + acceptTimeoutMs;
    let accepted: FdHandle | undefined;
    // Accept in short waits: a wait on the pool thread must not outlive the proxy.
    while (!accepted) {
      if (this.closed) throw new FerryError('ERR_ABORTED', 'the lazy-pages proxy was closed before the restore connected');
      try {
        accepted = await acceptSocket(listener, 500);
      } catch (error) {
        if ((error as { code?: string }).code !== 'ETIMEDOUT' || Date.now() > deadline) throw error;
      }
    }
    listener.close();
    return StreamSocket.adopt(accepted);
  }

  /**
   * holdDaemonUffds() now and every `everyMs` (the daemon's forked tasks get userfaultfds at any time), until stop()
   * or the daemon is gone: its pid may name another process then.
   */
  keepHolding(daemon: ProcessId, everyMs = 200): { stop(): void } {
    const hold = () => {
      if (isAlive(daemon)) this.holdDaemonUffds(daemon.pid);
      else clearInterval(timer);
    };
    const timer = setInterval(hold, everyMs);
    timer.unref();
    hold();
    return { stop: () => clearInterval(timer) };
  }

  /**
   * Copies every userfaultfd the daemon holds now (those of tasks forked since the restore included), replacing the
   * previous such copies (the new ones are taken before the old ones go). Returns how many it holds. A daemon that is
   * gone leaves the previous copies in place.
   */
  holdDaemonUffds(daemonPid: number): number {
    let pidfd: FdHandle;
    try {
      pidfd = pidfdOpen(daemonPid);
    } catch {
      return this.daemonCopies.length;
    }
    const fresh: FdHandle[] = [];
    try {
      for (const name of readdirSync(`/proc/${daemonPid}/fd`)) {
        let target: string;
        try {
          target = readlinkSync(`/proc/${daemonPid}/fd/${name}`);
        } catch {
          continue;
        }
        if (target !== 'anon_inode:[userfaultfd]') continue;
        try {
          fresh.push(pidfdGetfd(pidfd, Number(name)));
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      for (const f of fresh) f.close();
      return this.daemonCopies.length;
    } finally {
      pidfd.close();
    }
    const old = this.daemonCopies;
    this.daemonCopies = fresh;
    for (const f of old) f.close();
    return fresh.length;
  }

  /**
   * Drops every copy. Only once no restored task can fault on a missing page any more: every page has been copied
   * (the daemon finished), or the restored tasks are dead.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener?.close();
    for (const c of this.restoreCopies.splice(0)) c.fd.close();
    for (const f of this.daemonCopies.splice(0)) f.close();
  }
}
