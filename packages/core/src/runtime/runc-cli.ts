/**
 * Runs the runc binary: argv arrays only (never a shell string), a deadline, and a clean kill of everything runc
 * started when the deadline passes or the caller aborts.
 *
 * Two ways to run it:
 * - captured (default): stdout and stderr are pipes read here. Only for commands whose children never inherit
 *   runc's stdio (state, list, pause, resume, kill, delete, checkpoint).
 * - detached (`logFile` given): stdin/stdout/stderr are /dev/null and runc writes its own messages as JSON lines to
 *   `logFile` (`runc --log FILE --log-format json`). Needed for `run -d` and `restore -d`: the container's init
 *   inherits runc's stdio, and CRIU can neither dump a host file nor should a container hold a pipe to ferry.
 *
 * Contract: run() resolves with the outcome of every completed runc process (also non-zero exits; the caller
 * translates them) and rejects only when runc cannot be started. On timeout or abort it first kills runc's
 * descendants (criu, and tasks CRIU was restoring: they are runc's children through CLONE_PARENT) so that runc
 * itself sees CRIU go away and runs its own clean-up (state dir, criu-root mount, cgroups); runc is killed only if
 * it does not exit within `killGraceMs` after that.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import type { DumpPlan } from './checkpoint-pipeline';
import type { RestorePlan } from './restore-pipeline';
import { dumpToolSignal } from './dump-abort';
import { lazyReadiness, watchStatusFile } from './lazy-ready';
import { runTool, type ToolOutcome } from './run-tool';
import type { CheckpointOptions } from './runtime-adapter';

export interface RuncCliOptions {
  runcPath: string;
  /** runc's state root (`runc --root`); runc's default (/run/runc) when undefined. */
  runcRoot?: string;
  /** nsenter, for calls that run runc inside a network namespace (`netnsPath`). */
  nsenterPath?: string;
}

export interface RuncCallOptions {
  /** Detached mode: runc's stdio on /dev/null, its messages as JSON lines in this file. */
  logFile?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** See ChildDeadline.liftDeadline (a lazy dump's page server is ready). */
  liftDeadline?: Promise<unknown>;
  /** How long runc gets to clean up after its descendants were killed. */
  killGraceMs?: number;
  /** A file descriptor runc gets as fd 3 (for `--status-fd 3`); the caller owns it. */
  statusFd?: number;
  /** Run runc (and so CRIU) inside this network namespace (`nsenter --net=PATH runc ...`). */
  netnsPath?: string;
}

export interface RuncOutcome extends ToolOutcome {
  exitSignal: NodeJS.Signals | null;
}

export class RuncCli {
  constructor(readonly options: RuncCliOptions) {}

  /** The argv runc gets for `args` (global flags first). Exposed for tests and error details. */
  argv(args: readonly string[], logFile?: string): string[] {
    const global: string[] = [];
    if (this.options.runcRoot !== undefined) global.push('--root', this.options.runcRoot);
    if (logFile !== undefined) global.push('--log', logFile, '--log-format', 'json');
    return [...global, ...args];
  }

  async run(args: readonly string[], call: RuncCallOptions = {}): Promise<RuncOutcome> {
    const netns = call.netnsPath === undefined ? undefined : { path: call.netnsPath, nsenterPath: this.options.nsenterPath ?? 'nsenter' };
    const ran = await runTool(this.options.runcPath, this.argv(args, call.logFile), { ...call, quiet: call.logFile !== undefined, netns }, (err) =>
      new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot run ${this.options.runcPath}: ${err.message}`, {
        hint: 'Install runc (Debian: `apt-get install runc`) or pass its path in the runc adapter options.',
        cause: err,
        details: { runcPath: this.options.runcPath, errno: err.code },
      }),
    );
    let logText = '';
    if (call.logFile !== undefined) {
      try {
        logText = readFileSync(call.logFile, 'utf8');
      } catch {
        /* runc did not get far enough to write one */
      }
    }
    return {
      ...ran,
      args,
      errorText: [...runcErrorMessages(ran.stderr), ...runcErrorMessages(logText)].join('\n'),
      ok: ran.exitCode === 0 && !ran.timedOut && !ran.aborted,
    };
  }
}

/**
 * `runc checkpoint` arguments for a checkpoint request: the runc adapter and the Docker adapter (which drives runc
 * against Docker's own container) dump the same way. A lazy dump reports readiness on fd 3.
 */
export function runcCheckpointArgs(imagesDir: string, workDir: string, options: CheckpointOptions, containerId: string): string[] {
  const args = ['checkpoint', '--image-path', imagesDir, '--work-path', workDir];
  if (options.preDump) args.push('--pre-dump');
  if (options.parentImage) args.push('--parent-path', options.parentImage);
  if (options.leaveRunning && !options.preDump) args.push('--leave-running');
  if (options.tcpEstablished) args.push('--tcp-established');
  if (options.fileLocks) args.push('--file-locks');
  if (options.extUnixSk) args.push('--ext-unix-sk');
  const lazy = options.lazyPages;
  if (lazy) args.push('--lazy-pages', '--page-server', `${lazy.address}:${lazy.port}`, '--status-fd', '3');
  else if (options.pageServer) args.push('--page-server', `${options.pageServer.address}:${options.pageServer.port}`);
  args.push(containerId);
  return args;
}

/** `runc restore -d` arguments: CRIU's flags as the plan settled them (the caller's, else the dump's). */
export function runcRestoreArgs(plan: Pick<RestorePlan<'runc'>, 'name' | 'imagesDir' | 'workDir' | 'criu' | 'options'>, bundle: string): string[] {
  const args = ['restore', '--detach', '--image-path', plan.imagesDir, '--work-path', plan.workDir, '--bundle', bundle];
  if (plan.criu.tcpEstablished) args.push('--tcp-established');
  if (plan.options.lazyPages) args.push('--lazy-pages');
  if (plan.criu.fileLocks) args.push('--file-locks');
  if (plan.criu.extUnixSk) args.push('--ext-unix-sk');
  return [...args, plan.name];
}

/**
 * `runc checkpoint` of `containerId` as `plan` says, inside plan.netnsPath when given. A lazy dump's readiness comes
 * from CRIU's status fd: one byte once the images are written and the page server listens. runc wants a plain
 * writable fd (it refuses Node's socketpair 'pipe'), so it gets a file in the work dir, which is watched.
 */
export async function runcCheckpoint(cli: RuncCli, plan: DumpPlan, containerId: string, timeoutMs: number): Promise<RuncOutcome> {
  const { options, imagesDir, workDir } = plan;
  const lazy = options.lazyPages;
  const statusPath = join(workDir, 'lazy-status');
  const statusFd = lazy ? openSync(statusPath, 'w', 0o600) : undefined;
  const ready = lazyReadiness(lazy);
  const watch = lazy ? watchStatusFile(statusPath, ready.onReady) : undefined;
  const abort = dumpToolSignal(options.signal, ready.lifted);
  try {
    const args = runcCheckpointArgs(imagesDir, workDir, options, containerId);
    return await cli.run(args, { timeoutMs, liftDeadline: ready.lifted, signal: abort.signal, statusFd, netnsPath: plan.netnsPath });
  } finally {
    abort.done();
    watch?.stop();
    if (statusFd !== undefined) closeSync(statusFd);
  }
}

/**
 * runc's error messages from its stderr (logrus text: `time="..." level=error msg="..."`, sometimes also a plain
 * copy of the message) or from its `--log-format json` file. Warnings are left out.
 */
export function runcErrorMessages(text: string): string[] {
  const messages: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string };
        if ((entry.level === 'error' || entry.level === 'fatal') && entry.msg) messages.push(entry.msg);
        continue;
      } catch {
        /* not JSON after all: keep the line as it is */
      }
    }
    const logrus = /\blevel=(\w+)\s+msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (logrus) {
      const [, level, msg] = logrus;
      if ((level === 'error' || level === 'fatal') && msg !== undefined) messages.push(unquote(msg));
      continue;
    }
    messages.push(line);
  }
  // runc prints some messages twice (once plain, once through logrus).
  return [...new Set(messages)];
}

function unquote(msg: string): string {
  try {
    return JSON.parse(`"${msg}"`) as string;
  } catch {
    return msg;
  }
}
