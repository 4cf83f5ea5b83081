/**
 * CRIU driven through its RPC interface (`criu swrk`), one child per request.
 *
 * Contracts:
 * - dump(): returning means CRIU finished; without leaveRunning/leaveStopped the tree is gone. Throwing means CRIU
 *   resumed the tree (CRIU unfreezes on any dump failure), unless the error says otherwise.
 * - dumpWithHold(): resolves once the tree is dumped and still frozen (post-dump notify). The caller must then call
 *   exactly one of commit() (CRIU kills the tree) or resume() (CRIU thaws it). Until then CRIU waits.
 * - restore(): returning means the tree runs (or is stopped, with leaveStopped); throwing means nothing of it runs.
 *   With orphanPtsMaster, the result carries the master of the pty CRIU created for the tree's terminal: the caller
 *   owns it (closing it hangs the terminal up); on failure it is closed here.
 * - An abort does not stop a dump or pre-dump: CRIU runs to its end (runtime/dump-abort.ts says why); other requests
 *   end at once.
 * Image and work directories are opened here and closed before returning; the caller keeps ownership of the paths.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../model/error-codes';
import { FerryError } from '../model/ferry-error';
import { isHarmlessLogLine, readLogExcerpt } from './criu-log';
import {
  dumpWireOpts,
  restoreWireOpts,
  commonWireOpts,
  type CriuCommonOptions,
  type CriuDumpOptions,
  type CriuRestoreOptions,
} from './criu-options';
import type { MessageSocketPairFactory, OwnedFd } from './message-socket';
import type { WireOpts, WireRequest, WireResponse } from './rpc-codec';
import { SwrkSession } from './swrk-session';

/** CRIU's notify script names, in the order CRIU calls them. */
export type NotifyScript =
  | 'pre-dump'
  | 'post-dump'
  | 'network-lock'
  | 'network-unlock'
  | 'setup-namespaces'
  | 'post-setup-namespaces'
  | 'pre-restore'
  | 'post-restore'
  | 'pre-resume'
  | 'post-resume'
  | 'orphan-pts-master'
  | 'query-ext-files'
  | (string & {});

/**
 * Descriptors CRIU sent with a notification (only `orphan-pts-master` carries one). The handler may take() them and
 * then owns them; whatever it leaves is closed by the client once the handler has settled.
 */
export interface NotifyFds {
  readonly count: number;
  take(): OwnedFd[];
}

/** Return false (or throw) to make CRIU fail the operation at this point. */
export type NotifyHandler = (script: NotifyScript, pid: number | undefined, fds: NotifyFds) => boolean | void | Promise<boolean | void>;

/** One request/response conversation with a CRIU process (SwrkSession in production, a scripted fake in tests). */
export interface RpcSession {
  send(request: WireRequest): Promise<void>;
  recv(): Promise<WireResponse>;
  /** recv() plus the descriptors sent with the response (the caller owns them); sessions without it carry none. */
  recvWithFds?(): Promise<{ response: WireResponse; fds: OwnedFd[] }>;
  call(request: WireRequest): Promise<WireResponse>;
  close(): void;
}

export type StartSession = (options: {
  criuPath: string;
  inheritFds?: readonly number[];
  stdin?: number;
  signal?: AbortSignal;
}) => Promise<RpcSession>;

export interface CriuClientOptions {
  criuPath: string;
  socketPair?: MessageSocketPairFactory;
  /** Overrides how CRIU is started; defaults to `criu swrk` on a socketPair(). */
  startSession?: StartSession;
}

export interface CallOptions {
  onNotify?: NotifyHandler;
  signal?: AbortSignal;
  /** Descriptors the criu child inherits as fd 4, 5, ... (for inherit_fd / page-server fds). */
  inheritFds?: readonly number[];
  /**
   * The criu child's stdin (default /dev/null). A shell-job restore (shellJob without orphanPtsMaster) attaches the
   * job to CRIU's stdin, which must then be a terminal whose session is this process's. The caller keeps the fd.
   */
  stdin?: number;
}

export interface CriuVersion {
  major: number;
  minor: number;
  sublevel: number;
  gitid?: string;
  /** "4.2.1" style text. */
  text: string;
}

export interface CriuFeatures {
  memTrack: boolean;
  lazyPages: boolean;
  pidfdStore: boolean;
}

export interface DumpResult {
  logPath: string;
  /** CRIU reports `restored` when the dump was followed by a restore in the same call (not used by ferry). */
  restored: boolean;
}

export interface CriuRestoreResult {
  pid: number;
  logPath: string;
  /**
   * With orphanPtsMaster: the master of the pty CRIU created in place of the tree's terminal, whose master was not
   * part of the dump. The caller owns it; the restored tree sees a hang-up when it is closed.
   */
  orphanPtsMaster?: OwnedFd;
}

export interface DumpHold {
  /** Tree dumped and frozen; answer CRIU's post-dump notify with success: CRIU kills the tree. */
  commit(): Promise<DumpResult>;
  /** Answer post-dump with failure: CRIU thaws the tree and it runs on. */
  resume(): Promise<void>;
  readonly logPath: string;
}

export class CriuClient {
  constructor(private readonly options: CriuClientOptions) {}

  get criuPath(): string {
    return this.options.criuPath;
  }

  async version(signal?: AbortSignal): Promise<CriuVersion> {
    const resp = await this.simple({ type: 'VERSION' }, 'ERR_CRIU_REQUEST_FAILED', 'version', signal);
    const v = resp.version;
    if (!v) throw new FerryError('ERR_CRIU_PROTOCOL', 'CRIU answered VERSION without a version');
    const sublevel = v.sublevel ?? 0;
    return { major: v.major_number, minor: v.minor_number, sublevel, gitid: v.gitid, text: `${v.major_number}.${v.minor_number}.${sublevel}` };
  }

  /** Asks CRIU which of the given features this kernel + CRIU support. */
  async features(signal?: AbortSignal): Promise<CriuFeatures> {
    const resp = await this.simple(
      { type: 'FEATURE_CHECK', features: { mem_track: true, lazy_pages: true, pidfd_store: true } },
      'ERR_CRIU_CHECK_FAILED',
      'feature check',
      signal,
    );
    const f = resp.features ?? {};
    return { memTrack: f.mem_track === true, lazyPages: f.lazy_pages === true, pidfdStore: f.pidfd_store === true };
  }

  /** `criu check` through RPC: true when CRIU can checkpoint and restore on this kernel. */
  async check(workDir: string, signal?: AbortSignal): Promise<{ ok: boolean; logPath: string }> {
    const logFile = 'check.log';
    return this.withDirs(workDir, workDir, async (fds) => {
      const opts: WireOpts = { images_dir_fd: fds.imagesDirFd, work_dir_fd: fds.workDirFd, log_file: logFile, log_level: 4 };
      const session = await this.session({ signal });
      try {
        const resp = await session.call({ type: 'CHECK', opts });
        return { ok: resp.success, logPath: join(workDir, logFile) };
      } finally {
        session.close();
      }
    });
  }

  async dump(options: CriuDumpOptions, call: CallOptions = {}): Promise<DumpResult> {
    const logFile = options.logFile ?? 'dump.log';
    const workDir = options.workDir ?? options.imagesDir;
    const logPath = join(workDir, logFile);
    return this.withDirs(options.imagesDir, workDir, async (fds) => {
      const opts = dumpWireOpts({ ...options, logFile }, fds);
      const resp = await this.run({ type: 'DUMP', opts }, call, 'ERR_CRIU_DUMP_FAILED', 'dump', logPath);
      return { logPath, restored: resp.dump?.restored === true };
    });
  }

  /** One pre-dump (memory only, tree resumed afterwards); needs memory tracking in the kernel. */
  async preDump(options: CriuDumpOptions, call: CallOptions = {}): Promise<DumpResult> {
    const logFile = options.logFile ?? 'pre-dump.log';
    const workDir = options.workDir ?? options.imagesDir;
    const logPath = join(workDir, logFile);
    return this.withDirs(options.imagesDir, workDir, async (fds) => {
      const opts = dumpWireOpts({ ...options, logFile, trackMem: options.trackMem ?? true }, fds);
      await this.run({ type: 'PRE_DUMP', opts }, call, 'ERR_CRIU_PRE_DUMP_FAILED', 'pre-dump', logPath);
      return { logPath, restored: false };
    });
  }

  /**
   * Dumps and holds the tree frozen at post-dump until the caller decides. Resolves when the hold begins; rejects if
   * the dump fails before that (CRIU then thaws the tree).
   */
  async dumpWithHold(options: CriuDumpOptions, call: Omit<CallOptions, 'onNotify'> & { onNotify?: NotifyHandler } = {}): Promise<DumpHold> {
    let decide!: (commit: boolean) => void;
    const decision = new Promise<boolean>((resolve) => (decide = resolve));
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const onNotify: NotifyHandler = async (script, pid, fds) => {
      const earlier = await call.onNotify?.(script, pid, fds);
      if (earlier === false) return false;
      if (script !== 'post-dump') return true;
      held();
      return decision;
    };
    const finished = this.dump(options, { ...call, onNotify });
    // Whichever comes first: the hold, or the end of the dump (a failure before post-dump).
    const first = await Promise.race([holding.then(() => 'held' as const), finished.then(() => 'finished' as const)]);
    if (first === 'finished') {
      throw new FerryError('ERR_CRIU_PROTOCOL', 'CRIU finished the dump without a post-dump notification', {
        hint: 'This CRIU does not honour notify_scripts; ferry needs CRIU >= 4.2.',
      });
    }
    const logPath = join(options.workDir ?? options.imagesDir, options.logFile ?? 'dump.log');
    let answered = false;
    const once = () => {
      if (answered) throw new Error('DumpHold already answered');
      answered = true;
    };
    return {
      logPath,
      commit: async () => {
        once();
        decide(true);
        return finished;
      },
      resume: async () => {
        once();
        decide(false);
        try {
          await finished;
        } catch (err) {
          // Expected: CRIU reports the refused post-dump as a failed dump after thawing the tree.
          if (err instanceof FerryError && err.code === 'ERR_CRIU_DUMP_FAILED') return;
          throw err;
        }
      },
    };
  }

  async restore(options: CriuRestoreOptions, call: CallOptions = {}): Promise<CriuRestoreResult> {
    const logFile = options.logFile ?? 'restore.log';
    const workDir = options.workDir ?? options.imagesDir;
    const logPath = join(workDir, logFile);
    return this.withDirs(options.imagesDir, workDir, async (fds) => {
      const opts = restoreWireOpts({ ...options, logFile }, fds);
      // CRIU sends the new master with the orphan-pts-master notify, which it only sends with notify_scripts on.
      const masters: OwnedFd[] = [];
      const onNotify: NotifyHandler | undefined = options.orphanPtsMaster
        ? (script, pid, received) => {
            if (script === 'orphan-pts-master') masters.push(...received.take());
            return call.onNotify?.(script, pid, received);
          }
        : call.onNotify;
      try {
        const resp = await this.run({ type: 'RESTORE', opts }, { ...call, onNotify }, 'ERR_CRIU_RESTORE_FAILED', 'restore', logPath);
        if (!resp.restore) throw new FerryError('ERR_CRIU_PROTOCOL', 'CRIU answered RESTORE without a pid');
        const [orphanPtsMaster, ...extra] = masters.splice(0);
        for (const fd of extra) fd.close();
        return orphanPtsMaster ? { pid: resp.restore.pid, logPath, orphanPtsMaster } : { pid: resp.restore.pid, logPath };
      } finally {
        for (const fd of masters) fd.close();
      }
    });
  }

  /**
   * Starts a page server daemon that writes received pages into imagesDir. Resolves with its pid and port once it
   * listens; the caller owns the daemon (it exits after one dump connection, or kill it).
   */
  async pageServer(options: CriuCommonOptions, call: CallOptions = {}): Promise<{ pid: number; port: number; logPath: string }> {
    const logFile = options.logFile ?? 'page-server.log';
    const workDir = options.workDir ?? options.imagesDir;
    const logPath = join(workDir, logFile);
    return this.withDirs(options.imagesDir, workDir, async (fds) => {
      const opts = commonWireOpts({ ...options, logFile }, fds);
      const resp = await this.run({ type: 'PAGE_SERVER', opts }, call, 'ERR_CRIU_PAGE_SERVER_FAILED', 'page server', logPath);
      if (!resp.ps || typeof resp.ps.pid !== 'number') {
        throw new FerryError('ERR_CRIU_PROTOCOL', 'CRIU answered PAGE_SERVER without the server pid');
      }
      return { pid: resp.ps.pid, port: resp.ps.port ?? options.pageServer?.port ?? 0, logPath };
    });
  }

  /** Writes this host's CPU description (cpuinfo.img) into dir, for checking on another host. */
  async cpuinfoDump(dir: string, signal?: AbortSignal): Promise<void> {
    await this.withDirs(dir, dir, async (fds) => {
      const opts: WireOpts = { images_dir_fd: fds.imagesDirFd, work_dir_fd: fds.workDirFd, log_file: 'cpuinfo-dump.log', log_level: 4 };
      await this.run({ type: 'CPUINFO_DUMP', opts }, { signal }, 'ERR_CRIU_CPUINFO_FAILED', 'cpuinfo dump', join(dir, 'cpuinfo-dump.log'));
    });
  }

  /** Checks a cpuinfo.img from another host against this CPU; false when images from there cannot run here. */
  async cpuinfoCheck(dir: string, signal?: AbortSignal): Promise<{ compatible: boolean; logPath: string }> {
    const logPath = join(dir, 'cpuinfo-check.log');
    return this.withDirs(dir, dir, async (fds) => {
      const opts: WireOpts = { images_dir_fd: fds.imagesDirFd, work_dir_fd: fds.workDirFd, log_file: 'cpuinfo-check.log', log_level: 4 };
      const session = await this.session({ signal });
      try {
        const resp = await session.call({ type: 'CPUINFO_CHECK', opts });
        return { compatible: resp.success, logPath };
      } finally {
        session.close();
      }
    });
  }

  private async session(call: CallOptions): Promise<RpcSession> {
    const start: StartSession =
      this.options.startSession ??
      ((o) => {
        if (!this.options.socketPair) throw new TypeError('CriuClient needs socketPair or startSession');
        return SwrkSession.start({ ...o, socketPair: this.options.socketPair });
      });
    return start({ criuPath: this.options.criuPath, inheritFds: call.inheritFds, stdin: call.stdin, signal: call.signal });
  }

  private async simple(request: WireRequest, code: ErrorCode, what: string, signal?: AbortSignal): Promise<WireResponse> {
    const session = await this.session({ signal });
    try {
      const resp = await session.call(request);
      if (!resp.success) throw criuFailure(code, what, resp, undefined);
      return resp;
    } finally {
      session.close();
    }
  }

  /** Sends one request and serves notify callbacks until the final response. */
  private async run(request: WireRequest, call: CallOptions, code: ErrorCode, what: string, logPath: string): Promise<WireResponse> {
    if (call.onNotify && request.opts) request.opts.notify_scripts = true;
    // A dump is not killed on abort: CRIU killed while it holds the tree can take a task down (runtime/dump-abort.ts).
    const dumping = request.type === 'DUMP' || request.type === 'PRE_DUMP';
    const session = await this.session(dumping ? { ...call, signal: undefined } : call);
    try {
      if (call.signal?.aborted) throw aborted(what);
      await session.send(request);
      for (;;) {
        const received = session.recvWithFds ? session.recvWithFds() : session.recv().then((response) => ({ response, fds: [] as OwnedFd[] }));
        const { response: resp, fds } = await received.catch((err: unknown) => {
          if (call.signal?.aborted) throw aborted(what);
          if (err instanceof FerryError) err.details.logPath = logPath;
          throw err;
        });
        if (resp.type !== 'NOTIFY') {
          for (const fd of fds) fd.close();
          if (!resp.success) throw criuFailure(code, what, resp, logPath);
          return resp;
        }
        let ok = true;
        const notifyFds = takeable(fds);
        try {
          ok = (await call.onNotify?.(resp.notify?.script ?? '', resp.notify?.pid, notifyFds)) !== false;
        } catch {
          ok = false;
        } finally {
          for (const fd of notifyFds.take()) fd.close();
        }
        await session.send({ type: 'NOTIFY', notify_success: ok });
      }
    } finally {
      session.close();
    }
  }

  private async withDirs<T>(imagesDir: string, workDir: string, body: (fds: { imagesDirFd: number; workDirFd: number }) => Promise<T>): Promise<T> {
    const imagesDirFd = openDir(imagesDir);
    let workDirFd = imagesDirFd;
    try {
      if (workDir !== imagesDir) workDirFd = openDir(workDir);
      return await body({ imagesDirFd, workDirFd });
    } finally {
      closeSync(imagesDirFd);
      if (workDirFd !== imagesDirFd) closeSync(workDirFd);
    }
  }
}

function takeable(fds: OwnedFd[]): NotifyFds {
  let left = fds;
  return {
    get count() {
      return left.length;
    },
    take() {
      const taken = left;
      left = [];
      return taken;
    },
  };
}

function openDir(path: string): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `cannot open directory ${path}: ${(err as Error).message}`, {
      hint: 'Check the path; image directories must exist before CRIU runs.',
      cause: err,
    });
  }
}

function aborted(what: string): FerryError {
  return new FerryError('ERR_ABORTED', `${what} interrupted`, { hint: 'Run the command again when ready.' });
}

function criuFailure(code: ErrorCode, what: string, resp: WireResponse, logPath: string | undefined): FerryError {
  const excerpt = logPath ? readLogExcerpt(logPath) : undefined;
  // CRIU sends the first error it logged; where that is a known-harmless line, the log's last error says more.
  const lastError = excerpt?.lines.filter((l) => /Error/.test(l)).at(-1)?.replace(/^\(\d+\.\d+\)\s*/, '');
  const errmsg = resp.cr_errmsg && !isHarmlessLogLine(resp.cr_errmsg) ? resp.cr_errmsg : lastError;
  const reason = errmsg || (resp.cr_errno ? `errno ${resp.cr_errno}` : 'see the log');
  const lines = excerpt?.lines.length ? `\n${excerpt.lines.map((l) => `  ${l}`).join('\n')}` : '';
  return new FerryError(code, `CRIU ${what} failed: ${reason}${logPath ? ` (log: ${logPath})` : ''}${lines}`, {
    hint: logPath ? `Read ${logPath} for the full story; \`ferry doctor\` checks the host.` : 'Run `ferry doctor` to check the host.',
    details: { crErrno: resp.cr_errno, crErrmsg: resp.cr_errmsg, logPath, logExcerpt: excerpt?.lines },
  });
}
