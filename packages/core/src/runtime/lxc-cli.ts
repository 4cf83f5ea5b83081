/**
 * Runs the lxc-* tools: argv arrays only (never a shell), the adapter's PATH, a deadline, and a clean kill of
 * everything a tool started when the deadline passes or the caller aborts.
 *
 * Two ways to run a tool:
 * - captured (default): stdout and stderr are pipes read here. For tools that start nothing that outlives them
 *   (lxc-info, lxc-ls, lxc-freeze, lxc-stop, lxc-destroy, `lxc-checkpoint` dumps).
 * - logged (`logFile` given): stdio on /dev/null and liblxc's messages in `logFile` (`-o FILE -l LEVEL`). Needed for
 *   `lxc-checkpoint -r` and `lxc-start`: the container's monitor inherits the tool's stdio and lives on, so a pipe
 *   would never reach EOF (and a container must not hold a pipe to ferry).
 *
 * Contract: run() resolves with the outcome of every tool that ran (non-zero exits included; the caller translates
 * them) and rejects only when the tool cannot be started. On timeout or abort the tool's descendants (criu, the
 * tasks it restores) are killed first, so liblxc sees CRIU fail and cleans up; the tool itself after a grace period.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { findExecutable } from '../host/find-executable';
import { FerryError } from '../model/ferry-error';
import type { DumpPlan } from './checkpoint-pipeline';
import { descendantsOf } from './child-deadline';
import { dumpToolSignal } from './dump-abort';
import { lazyReadiness, watchListening } from './lazy-ready';
import type { Located } from './lxc-containers';
import { writeLxcCriuConfig } from './lxc-criu-config';
import { netnsInode } from './network-fence';
import type { RestorePlan } from './restore-pipeline';
import { runTool, type ToolOutcome } from './run-tool';

/** ferry's CRIU options for liblxc's CRIU, in the work dir. */
const CRIU_CONF = 'ferry-criu.conf';

export interface LxcCallOptions {
  /** Logged mode: stdio on /dev/null, liblxc's log in this file (the caller adds nothing to argv). */
  logFile?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** See ChildDeadline.liftDeadline (a lazy dump's page server is ready). */
  liftDeadline?: Promise<unknown>;
  /** Environment additions (CRIU_CONFIG_FILE); PATH is always the adapter's search path. */
  env?: Record<string, string>;
  killGraceMs?: number;
  /** Called with the tool's pid once it runs. */
  onSpawn?: (pid: number) => void;
}

export interface LxcOutcome extends ToolOutcome {
  tool: string;
}

export class LxcCli {
  constructor(
    /** Tool name to path, e.g. 'lxc-info' -> '/usr/bin/lxc-info'. */
    private readonly resolveTool: (tool: string) => string,
    private readonly searchPath: string,
  ) {}

  async run(tool: string, args: readonly string[], call: LxcCallOptions = {}): Promise<LxcOutcome> {
    const logged = call.logFile !== undefined;
    const argv = logged ? [...args, '-o', call.logFile!, '-l', 'ERROR'] : [...args];
    const path = this.resolveTool(tool);
    const ran = await runTool(
      path,
      argv,
      {
        ...call,
        quiet: logged,
        // Logged mode: on exit, since a daemonised monitor may keep inherited descriptors open.
        untilExit: logged,
        // The inherited environment (as RuncCli's children get it), with the adapter's PATH and ferry's additions.
        env: { ...process.env, PATH: this.searchPath, ...call.env },
      },
      (err) =>
        new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot run ${path}: ${err.message}`, {
          hint: 'Install LXC (Debian: `apt-get install lxc`) or pass the tools\' directory in the LXC adapter options.',
          cause: err,
          details: { tool: path, errno: err.code },
        }),
    );
    let errorText = ran.stderr.trim();
    if (logged) {
      try {
        const log = readFileSync(call.logFile!, 'utf8');
        errorText = [errorText, ...log.split('\n').filter((l) => /\bERROR\b/.test(l)).map((l) => l.replace(/^.*?ERROR\s+/, ''))]
          .filter(Boolean)
          .join('\n');
      } catch {
        /* liblxc wrote no log */
      }
    }
    return { ...ran, tool, args: argv, errorText, ok: ran.exitCode === 0 && !ran.timedOut && !ran.aborted };
  }
}

/**
 * `lxc-checkpoint -D IMAGES` as `plan` says, with ferry's CRIU options in CRIU_CONFIG_FILE (liblxc names CRIU's log by
 * absolute path in the images dir; the work dir gets CRIU's stats and the config file). A lazy dump is ready when its
 * page server listens (liblxc gives CRIU no status fd): the socket is watched in CRIU's network namespace.
 *
 * plan.netnsPath: lxc-checkpoint itself must stay in this network namespace (it reaches the container's monitor over
 * an abstract unix socket, which exists per network namespace: measured, "not running, not checkpointing"), so only
 * CRIU moves: liblxc runs the `criu` it finds first in PATH, and that is criuInNetns()'s wrapper.
 */
export async function lxcCheckpoint(cli: LxcCli, where: Located, plan: DumpPlan, timeoutMs: number, tools: { searchPath: string; nsenterPath: string }): Promise<LxcOutcome> {
  const { options, imagesDir, workDir } = plan;
  const lazy = options.lazyPages;
  const server = lazy ? { lazyPages: { address: lazy.address, port: lazy.port } } : options.pageServer ? { pageServer: options.pageServer } : {};
  const { tcpEstablished, fileLocks, extUnixSk } = options;
  const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), { tcpEstablished, fileLocks, extUnixSk, workDir, ...server });
  const env: Record<string, string> = confPath ? { CRIU_CONFIG_FILE: confPath } : {};
  if (plan.netnsPath) env.PATH = `${criuInNetns(workDir, plan.netnsPath, tools)}${delimiter}${tools.searchPath}`;
  // CRIU kills the tree itself at the end of a lazy dump: liblxc must not stop it (-s) as well.
  const args = ['-P', where.lxcpath, '-n', where.name, '-D', imagesDir, ...(plan.leaveRunning || lazy ? [] : ['-s'])];
  let toolPid: number | undefined;
  const ready = lazyReadiness(lazy);
  const watch = lazy ? watchListening(lazy.port, listenerPid(() => toolPid, plan.netnsPath), ready.onReady) : undefined;
  const abort = dumpToolSignal(options.signal, ready.lifted);
  try {
    return await cli.run('lxc-checkpoint', args, { timeoutMs, liftDeadline: ready.lifted, signal: abort.signal, env, onSpawn: (pid) => (toolPid = pid) });
  } finally {
    abort.done();
    watch?.stop();
  }
}

/** Paths that can stand in a generated script without quoting trouble. */
const PLAIN_PATH = /^\/[A-Za-z0-9._/@+,=-]+$/;

/**
 * A directory (in the work dir, 0700) holding `criu`: a two-line script that runs the real CRIU inside the network
 * namespace at nsPath. Every path in it is checked to be plain (no quotes, spaces or shell characters), and single-
 * quoted all the same.
 */
function criuInNetns(workDir: string, nsPath: string, tools: { searchPath: string; nsenterPath: string }): string {
  const criu = findExecutable('criu', tools.searchPath);
  if (!criu) throw new FerryError('ERR_PRECHECK_CRIU_MISSING', `no criu in ${tools.searchPath}`, { hint: 'Run scripts/provision-host.sh.' });
  for (const path of [criu, tools.nsenterPath, nsPath, workDir]) {
    if (!PLAIN_PATH.test(path)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${JSON.stringify(path)} cannot be used to run CRIU in a network namespace`, { hint: 'Use paths of letters, digits and ._/@+,=-' });
  }
  const bin = join(workDir, 'ferry-netns-bin');
  mkdirSync(bin, { recursive: true, mode: 0o700 });
  writeFileSync(join(bin, 'criu'), `#!/bin/sh\nexec '${tools.nsenterPath}' '--net=${nsPath}' '${criu}' "$@"\n`, { mode: 0o700 });
  return bin;
}

/**
 * The pid whose /proc/PID/net shows where CRIU listens: the tool's, or (netnsPath) a descendant in that namespace,
 * looked up again whenever the last one found has left it (liblxc first runs short-lived `criu` checks).
 */
function listenerPid(toolPid: () => number | undefined, netnsPath: string | undefined): () => number | undefined {
  if (!netnsPath) return toolPid;
  const inode = netnsInode(netnsPath);
  const inside = (pid: number) => netnsInode(`/proc/${pid}/ns/net`) === inode;
  let found: number | undefined;
  return () => {
    const root = toolPid();
    if (found !== undefined && inside(found)) return found;
    found = root === undefined ? undefined : descendantsOf(root).find(inside);
    return found;
  };
}

/** `lxc-checkpoint -r` into `where`, CRIU's flags as the plan settled them, liblxc's log in the work dir. */
export function lxcRestore(cli: LxcCli, where: Located, plan: RestorePlan<'lxc'>, timeoutMs: number): Promise<LxcOutcome> {
  const { imagesDir, workDir, criu, options } = plan;
  const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), { ...criu, workDir, lazyPages: options.lazyPages === true });
  const logFile = join(workDir, 'lxc-restore.log');
  rmSync(logFile, { force: true });
  return cli.run('lxc-checkpoint', ['-r', '-P', where.lxcpath, '-n', where.name, '-D', imagesDir], {
    logFile,
    timeoutMs,
    signal: options.signal,
    env: confPath ? { CRIU_CONFIG_FILE: confPath } : {},
  });
}
