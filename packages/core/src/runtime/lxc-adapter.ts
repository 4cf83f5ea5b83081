/**
 * The LXC adapter, shaped like the runc reference adapter (runc-adapter.ts): resolve options once, find containers
 * through LXC's own tools, refuse what CRIU cannot handle before anything is frozen, let liblxc drive CRIU, record
 * what liblxc does not keep next to the images, and undo every side effect of a failed restore.
 *
 * Why liblxc's checkpoint (`lxc-checkpoint`) and not ferry's own CRIU client: a restored container must be an LXC
 * container afterwards, with its monitor, cgroups, command socket and state that `lxc-info`, `lxc-stop` and
 * `lxc-attach` understand. Only liblxc's restore sets those up (it starts the monitor, creates the cgroups and hands
 * CRIU `--cgroup-root`, the external mounts, and the devices it made); a restore by ferry's CRIU client would leave a
 * process tree LXC does not know. liblxc's dump also knows the container's mounts and freezer. What `lxc-checkpoint`
 * lacks as flags (page server, lazy pages, TCP connections, a separate work dir) ferry passes through CRIU's own
 * configuration file (CRIU_CONFIG_FILE, lxc-criu-config.ts), so both strategies, stop-and-copy with streamed pages
 * and post-copy, work through liblxc. ferry's CRIU client stays for the page server and `criu lazy-pages` on the
 * destination.
 *
 * The contract (RuntimeAdapter, runtime-adapter.ts), as LXC meets it:
 * - Containers are found in every lxcpath of the options (LXC's default /var/lib/lxc, plus `-P` paths); the first
 *   lxcpath holding NAME/config wins. ContainerInfo.bundle is the container directory LXCPATH/NAME (config and
 *   rootfs): that is what a migration copies.
 * - checkpoint(): `lxc-checkpoint -D DIR` (CRIU's --leave-running: a paused container stays paused, verified with
 *   LXC 5.0.2 and CRIU 4.2.1: the freezer stays FROZEN across the dump). Without leaveRunning `-s`: liblxc stops the
 *   container after CRIU succeeded; the container directory stays (the restore needs it), so the container is
 *   "stopped", not gone. When checkpoint() throws, the container is as it was before the call.
 * - restore(): `lxc-checkpoint -r` into LXCPATH/NAME. The directory is the existing (stopped) container's, or the
 *   `bundle` given (a migration's copy, moved into place), or a copy of the checkpointed container's directory when
 *   restoring under a new name. CRIU restores the freezer state of the dump, so a container held frozen for a
 *   migration comes back frozen: the adapter thaws it. When restore() throws, nothing of it runs and a directory the
 *   adapter put into the lxcpath is gone again.
 * - pause()/resume() write the cgroup freezer directly (idempotent): `lxc-unfreeze` does not thaw a container that
 *   liblxc restored frozen on hybrid cgroup hosts. remove() stops the container and destroys it (`lxc-destroy`:
 *   directory and rootfs), the "moved away" end of a migration; a missing container is not an error.
 *
 * Files and fds: every tool is a child process with argv (never a shell) and the adapter's PATH; `lxc-checkpoint
 * -r` runs with stdio on /dev/null (the container's monitor inherits it) and liblxc's log in the work dir.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readLogExcerpt } from '../criu/criu-log';
import { Freezer } from '../freezer/freezer';
import { parseCgroupLayout, type CgroupInfo } from '../host/cgroup-layout';
import { findExecutable } from '../host/find-executable';
import { createImageDir } from '../image/image-dir';
import type { ContainerInfo, ContainerRef, ContainerState } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { LxcCli, type LxcOutcome } from './lxc-cli';
import { lxcConfigProblems, readLxcConfig, rootfsPathOf } from './lxc-config';
import { writeLxcCriuConfig, type LxcCriuExtras } from './lxc-criu-config';
import { readLxcRecord, writeLxcRecord, type LxcCheckpointRecord } from './lxc-record';
import { netnsTies, readNetnsInterfaces, type NetnsTools } from './runc-netns';
import { freezerPathOf } from './runc-state';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability } from './runtime-adapter';
import { assertImagesDir, checkpointStats, stoppedAfterDump, throwIfAborted } from './adapter-common';

const run = promisify(execFile);

export interface LxcAdapterOptions {
  /** Where containers are looked for, in order; the first is where restores without a record go. */
  lxcPaths: readonly string[];
  /** PATH-style list used to find the lxc-* tools, ip and nsenter, and given to liblxc (which runs `criu`). */
  searchPath: string;
  checkpointTimeoutMs: number;
  restoreTimeoutMs: number;
  commandTimeoutMs: number;
  /** Whether the kernel has AppArmor; read from /sys/module/apparmor when not given (tests override it). */
  apparmor: boolean | undefined;
}

export const DEFAULT_LXC_PATH = '/var/lib/lxc';
const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OPTION_KEYS: readonly (keyof LxcAdapterOptions)[] = ['lxcPaths', 'searchPath', 'checkpointTimeoutMs', 'restoreTimeoutMs', 'commandTimeoutMs', 'apparmor'];

export function resolveLxcAdapterOptions(input: Partial<LxcAdapterOptions> = {}): Readonly<LxcAdapterOptions> {
  for (const key of Object.keys(input)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `lxc adapter: unknown option "${key}"`, { details: { known: OPTION_KEYS } });
    }
  }
  const lxcPaths = [...new Set((input.lxcPaths ?? [DEFAULT_LXC_PATH]).map((p) => resolve(p)))];
  if (lxcPaths.length === 0) throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'lxc adapter: no lxcpath');
  for (const key of ['checkpointTimeoutMs', 'restoreTimeoutMs', 'commandTimeoutMs'] as const) {
    const value = input[key];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `lxc adapter: ${key} must be a positive number, got ${value}`);
    }
  }
  return Object.freeze({
    lxcPaths: Object.freeze(lxcPaths),
    searchPath: input.searchPath ?? DEFAULT_SEARCH_PATH,
    checkpointTimeoutMs: input.checkpointTimeoutMs ?? 300_000,
    restoreTimeoutMs: input.restoreTimeoutMs ?? 300_000,
    commandTimeoutMs: input.commandTimeoutMs ?? 30_000,
    apparmor: input.apparmor,
  });
}

/** LXC names: no '/', and ferry refuses a leading '-' or '.' so a name never reads as a flag or a dot dir. */
const LXC_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
const DUMP_LOG = 'dump.log';
const RESTORE_LOG = 'restore.log';
const LXC_RESTORE_LOG = 'lxc-restore.log';
const CRIU_CONF = 'ferry-criu.conf';
/** A process holding one of these is attached to a terminal CRIU cannot recreate. */
const TERMINAL = /^\/dev\/(console|ptmx|tty\d*|pts\/\d+)$/;

interface Located {
  lxcpath: string;
  name: string;
  dir: string;
}

interface LxcInfo {
  state: string;
  pid?: number;
}

export class LxcAdapter implements RuntimeAdapter {
  readonly name = 'lxc' as const;
  // lxc-checkpoint has no pre-dump: CRIU pre-copy is for runc (and Docker's runc) containers.
  readonly features = { lazyPages: true, preDump: false } as const;
  readonly options: Readonly<LxcAdapterOptions>;
  private readonly cli: LxcCli;
  private readonly tools: NetnsTools;
  private cgroupInfo: CgroupInfo | undefined;
  /** Interfaces fenceNetwork() took down, by container: the checkpoint records them for the restore to raise. */
  private readonly fenced = new Map<string, string[]>();

  constructor(options: Partial<LxcAdapterOptions> = {}) {
    this.options = resolveLxcAdapterOptions(options);
    const find = (tool: string) => findExecutable(tool, this.options.searchPath) ?? tool;
    this.cli = new LxcCli(find, this.options.searchPath);
    this.tools = { ipPath: find('ip'), nsenterPath: find('nsenter') };
  }

  // ------------------------------------------------------------------------------------------------ finding

  async availability(): Promise<RuntimeAvailability> {
    let outcome: LxcOutcome;
    try {
      outcome = await this.cli.run('lxc-checkpoint', ['--version'], { timeoutMs: this.options.commandTimeoutMs });
    } catch (err) {
      return { usable: false, reason: (err as Error).message };
    }
    if (!outcome.ok) return { usable: false, reason: `lxc-checkpoint --version failed: ${outcome.errorText}` };
    const version = outcome.stdout.trim().split('\n')[0];
    if (process.getuid?.() !== 0) return { usable: false, reason: 'LXC checkpoint/restore need root', version };
    return version ? { usable: true, version } : { usable: true };
  }

  async list(): Promise<ContainerInfo[]> {
    const found: Located[] = [];
    const seen = new Set<string>();
    for (const lxcpath of this.options.lxcPaths) {
      let names: string[];
      try {
        names = readdirSync(lxcpath);
      } catch {
        continue; // an lxcpath that does not exist holds no containers
      }
      for (const name of names.sort()) {
        if (!LXC_NAME.test(name) || seen.has(name) || !existsSync(join(lxcpath, name, 'config'))) continue;
        seen.add(name);
        found.push({ lxcpath, name, dir: join(lxcpath, name) });
      }
    }
    return Promise.all(found.map((c) => this.describe(c)));
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return this.describe(this.locate(id));
  }

  // ------------------------------------------------------------------------------------------------ preflight

  /**
   * Refuses, before anything is frozen, what CRIU cannot dump or restore: the config settings of lxc-config.ts
   * (ttys, an AppArmor profile the kernel cannot apply, host bind mounts), and a container task that holds a
   * terminal (its console or a pty).
   */
  async preflight(container: ContainerInfo): Promise<void> {
    assertLxc(container.ref);
    if (container.state !== 'running' && container.state !== 'paused') {
      throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `LXC container ${container.ref.id} is ${container.state}`, {
        hint: `Start it first (\`lxc-start -n ${container.ref.id}\`); only running or frozen containers can be checkpointed.`,
        details: { id: container.ref.id, state: container.state },
      });
    }
    const dir = container.bundle ?? this.locate(container.ref.id).dir;
    const entries = readLxcConfig(join(dir, 'config'), undefined, (p) => readdirSync(p));
    const problems = lxcConfigProblems(entries, { apparmor: this.apparmor(), containerDir: dir });
    const unsupported = (reason: string, hint: string, details: Record<string, unknown> = {}) =>
      new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `LXC container ${container.ref.id} cannot be checkpointed: ${reason}`, {
        hint,
        details: { id: container.ref.id, config: join(dir, 'config'), ...details },
      });
    if (problems.length > 0) {
      const first = problems[0]!;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).map((p) => p.key).join(', ')})` : '';
      throw unsupported(`${first.reason}${more}`, first.hint, { problems });
    }
    const holder = this.terminalHolder(container);
    if (holder) {
      throw unsupported(
        `process ${holder.pid} in it holds a terminal (fd ${holder.fd} -> ${holder.target})`,
        'Run the container\'s processes with stdio on /dev/null or pipes (no console, no pty sessions) and set `lxc.console.path = none`.',
        { pid: holder.pid, fd: holder.fd, target: holder.target },
      );
    }
  }

  // ------------------------------------------------------------------------------------------------ checkpoint

  /**
   * Steps: find the container and check it (inspect + preflight), write CRIU's extra options, let liblxc run CRIU,
   * then write ferry-container.json and measure. The record is written only after CRIU succeeded (before, for a
   * lazy dump, whose images are complete and sent while CRIU still serves pages).
   */
  async checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    assertLxc(ref);
    if (options.onNotify) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'the LXC adapter cannot pass CRIU notifications (liblxc keeps them)', {
        hint: 'Hold the container with pause() and checkpoint it with leaveRunning instead.',
      });
    }
    if (options.preDump || options.parentImage) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'the LXC adapter does not do incremental (pre-dump) checkpoints yet', {
        hint: 'Use stop-and-copy or post-copy.',
      });
    }
    throwIfAborted(options.signal, `checkpoint of ${ref.id}`);
    const where = this.locate(ref.id);
    const before = await this.describe(where);
    await this.preflight(before);

    const imagesDir = createImageDir(resolve(options.imagesDir));
    const workDir = resolve(options.workDir ?? imagesDir);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    // liblxc names CRIU's log by absolute path in the images dir (DIR/dump.log, DIR/restore.log); the work dir gets
    // CRIU's stats and ferry's config file.
    const lazy = options.lazyPages;
    // CRIU kills the tree itself at the end of a lazy dump: liblxc must not stop it (-s) as well.
    const leaveRunning = options.leaveRunning === true || lazy !== undefined;
    const extras: LxcCriuExtras = {
      tcpEstablished: options.tcpEstablished,
      fileLocks: options.fileLocks,
      extUnixSk: options.extUnixSk,
      workDir,
    };
    if (lazy) extras.lazyPages = { address: lazy.address, port: lazy.port };
    else if (options.pageServer) extras.pageServer = options.pageServer;
    const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), extras);

    const record: LxcCheckpointRecord = {
      format: 'ferry-container/1',
      runtime: 'lxc',
      id: ref.id,
      lxcpath: where.lxcpath,
      containerDir: where.dir,
      configText: readFileSync(join(where.dir, 'config'), 'utf8'),
      criu: {
        tcpEstablished: options.tcpEstablished === true,
        fileLocks: options.fileLocks === true,
        extUnixSk: options.extUnixSk === true,
        leaveRunning,
      },
      checkpointedAt: new Date().toISOString(),
    };
    if (before.rootfs) record.rootfs = before.rootfs;
    const fenced = this.fenced.get(ref.id);
    if (fenced?.length) record.raiseLinks = fenced;
    if (lazy) writeLxcRecord(imagesDir, record);

    const args = ['-P', where.lxcpath, '-n', ref.id, '-D', imagesDir];
    if (!leaveRunning) args.push('-s');
    // A lazy dump is ready when its page server listens (liblxc gives CRIU no status fd): watch for the socket.
    const watch = lazy ? watchListening(lazy.port, lazy.onReady) : undefined;
    let outcome: LxcOutcome;
    try {
      outcome = await this.cli.run('lxc-checkpoint', args, {
        timeoutMs: this.options.checkpointTimeoutMs,
        signal: options.signal,
        env: confPath ? { CRIU_CONFIG_FILE: confPath } : {},
      });
    } finally {
      watch?.stop();
    }
    if (!outcome.ok) {
      if (outcome.timedOut || outcome.aborted) this.recoverAfterKilledCheckpoint(before);
      throw this.criuFailure('ERR_CRIU_DUMP_FAILED', 'checkpoint', ref.id, outcome, join(imagesDir, DUMP_LOG), this.options.checkpointTimeoutMs);
    }
    if (!lazy) writeLxcRecord(imagesDir, record);

    const stats = await checkpointStats(imagesDir, workDir, outcome.durationMs);
    let container: ContainerInfo;
    if (leaveRunning && !lazy) {
      container = await this.inspect(ref.id).catch(() => before);
    } else {
      container = stoppedAfterDump(before);
    }
    return { container, imagesDir, stats };
  }

  // ------------------------------------------------------------------------------------------------ restore

  /**
   * Steps: read the record, settle the container directory (the stopped container's own, the given bundle moved
   * into the lxcpath, or a copy of the checkpointed container's directory under a new name), write CRIU's extra
   * options, `lxc-checkpoint -r`, then thaw what CRIU restored frozen. A directory the adapter put into place is
   * removed again when a later step fails.
   */
  async restore(options: RestoreOptions): Promise<RestoreResult> {
    throwIfAborted(options.signal, 'restore');
    const imagesDir = resolve(options.imagesDir);
    assertImagesDir(imagesDir);
    if (options.readdress && Object.keys(options.readdress).length > 0) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'the LXC adapter cannot give a restored container new addresses', {
        hint: 'Clone LXC containers without --address, or give them addresses inside the container after the restore.',
      });
    }
    const record = readLxcRecord(imagesDir);
    const name = options.name ?? record?.id;
    if (name === undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${imagesDir} has no ferry-container.json: the container name is unknown`, {
        hint: 'Pass --name (and --bundle with the container directory).',
      });
    }
    assertName(name);
    const bundle = options.bundle === undefined ? undefined : resolve(options.bundle);
    // In place when the checkpointed container is still defined here (a `checkpoint` without leaveRunning);
    // otherwise into the recorded lxcpath when this host searches it, else into this host's first lxcpath.
    const inPlace = bundle === undefined && record !== undefined && record.id === name && existsSync(join(record.containerDir, 'config'));
    const lxcpath = inPlace || (record && this.options.lxcPaths.includes(record.lxcpath)) ? record!.lxcpath : this.options.lxcPaths[0]!;
    const target = join(lxcpath, name);
    let placed = false;

    if (existsSync(join(target, 'config'))) {
      if (bundle !== undefined && bundle !== target) throw nameTaken(name, target);
      const info = await this.lxcInfo({ lxcpath, name, dir: target });
      if (info.state !== 'STOPPED') throw nameTaken(name, target);
    } else {
      const source = bundle ?? (record && record.id !== name ? record.containerDir : undefined);
      if (source === undefined || !existsSync(join(source, 'config'))) {
        throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no LXC container directory to restore ${name} into (${target} does not exist)`, {
          hint: 'Pass --bundle with a copy of the container directory (config and rootfs).',
          details: { target, bundle: source },
        });
      }
      if (existsSync(target)) throw nameTaken(name, target);
      mkdirSync(lxcpath, { recursive: true, mode: 0o755 });
      placed = true;
      try {
        if (bundle !== undefined) moveDir(bundle, target);
        else cpSync(source, target, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
        const oldDir = record?.containerDir ?? source;
        if (oldDir !== target) rewriteConfigPaths(join(target, 'config'), oldDir, target);
      } catch (err) {
        rmSync(target, { recursive: true, force: true });
        throw new FerryError('ERR_RUNTIME_FAILED', `cannot put the container directory into ${target}: ${(err as Error).message}`, {
          hint: 'Check free space and permissions in the lxcpath.',
          cause: err,
        });
      }
    }

    const workDir = resolve(options.workDir ?? imagesDir);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const where: Located = { lxcpath, name, dir: target };
    try {
      const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), {
        tcpEstablished: options.tcpEstablished ?? record?.criu.tcpEstablished,
        fileLocks: options.fileLocks ?? record?.criu.fileLocks,
        extUnixSk: options.extUnixSk ?? record?.criu.extUnixSk,
        workDir,
        lazyPages: options.lazyPages === true,
      });
      const logFile = join(workDir, LXC_RESTORE_LOG);
      rmSync(logFile, { force: true });
      const outcome = await this.cli.run('lxc-checkpoint', ['-r', '-P', lxcpath, '-n', name, '-D', imagesDir], {
        logFile,
        timeoutMs: this.options.restoreTimeoutMs,
        signal: options.signal,
        env: confPath ? { CRIU_CONFIG_FILE: confPath } : {},
      });
      if (!outcome.ok) {
        throw this.criuFailure('ERR_CRIU_RESTORE_FAILED', 'restore', name, outcome, join(imagesDir, RESTORE_LOG), this.options.restoreTimeoutMs);
      }
      // CRIU restores the links as they were dumped: a move fenced them (fenceNetwork). They come up now that the
      // restored sockets exist, and before the container is thawed.
      if (record?.raiseLinks?.length) {
        const info = await this.lxcInfo(where);
        for (const ifname of record.raiseLinks) await this.ipIn(`/proc/${info.pid}/ns/net`, ['link', 'set', ifname, 'up']);
      }
      // The dump recorded the freezer state: a container held frozen for a move comes back frozen.
      const restored = await this.describe(where, { thaw: true });
      if (restored.state !== 'running') {
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `LXC restored ${name} but it is ${restored.state}`, {
          hint: `Read ${logFile} and ${join(imagesDir, RESTORE_LOG)}.`,
        });
      }
      return { container: restored, restoreMs: outcome.durationMs };
    } catch (err) {
      await this.undoRestore(where, placed);
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Freezes every task of the container (cgroup freezer). Already frozen: nothing to do. */
  async pause(id: string): Promise<void> {
    const freezer = this.freezerOf(await this.inspect(id));
    if (freezer.state() !== 'frozen') await freezer.freeze({ timeoutMs: this.options.commandTimeoutMs });
  }

  /** Thaws a frozen container. Already running: nothing to do. */
  async resume(id: string): Promise<void> {
    const freezer = this.freezerOf(await this.inspect(id));
    if (freezer.state() !== 'thawed') freezer.thaw();
  }

  /**
   * Cuts the container off its network while it is frozen for a move, for the reason the runc adapter gives
   * (runc-adapter.ts fenceNetwork): the source kernel must not answer the container's clients after the dump.
   * For veth networks the host ends (lxc-info's "Link:") leave their bridge, outside the container: the container's
   * links stay up and keep their carrier, so CRIU restores its routes and reconnects its TCP sockets. (Measured: with
   * the container's links down CRIU fails with "soccr: Can't connect inet socket back: Network is unreachable"; with
   * the host ends down, the carrier loss breaks the route restore.) Other network types
   * have no host end here: their links inside the container go down, and the restore raises them (raiseLinks), which
   * keeps them off the network but does not carry established TCP connections.
   */
  async fenceNetwork(id: string): Promise<{ unfence(): Promise<void> }> {
    const info = await this.inspect(id);
    if (info.pid === undefined) return { unfence: async () => undefined };
    const hostEnds = (await this.hostLinks(this.locate(id))).flatMap((link) => {
      const bridge = bridgeOf(link);
      return bridge ? [{ link, bridge }] : [];
    });
    if (hostEnds.length > 0) {
      for (const { link } of hostEnds) await this.ipHere(['link', 'set', link, 'nomaster']);
      return {
        unfence: async () => {
          for (const { link, bridge } of hostEnds) await this.ipHere(['link', 'set', link, 'master', bridge]);
        },
      };
    }
    const nsPath = `/proc/${info.pid}/ns/net`;
    const interfaces = await readNetnsInterfaces(this.tools, nsPath);
    const setLinks = async (state: 'up' | 'down') => {
      for (const iface of interfaces) await this.ipIn(nsPath, ['link', 'set', iface.ifname, state]);
    };
    this.fenced.set(id, interfaces.map((i) => i.ifname));
    await setLinks('down');
    return {
      unfence: async () => {
        this.fenced.delete(id);
        await setLinks('up');
      },
    };
  }

  /**
   * Host ends that left their bridge go back to the bridges the config names (lxc.net.N.link, in order), and the
   * container's own links come up.
   */
  async unfenceNetwork(id: string): Promise<void> {
    const info = await this.inspect(id);
    if (info.pid === undefined) return;
    const where = this.locate(id);
    const bridges = readLxcConfig(join(where.dir, 'config'))
      .filter((e) => /^lxc\.net\.\d+\.link$/.test(e.key))
      .map((e) => e.value);
    const links = await this.hostLinks(where);
    for (const [i, link] of links.entries()) {
      const bridge = bridges[i];
      if (bridge && bridgeOf(link) === undefined) await this.ipHere(['link', 'set', link, 'master', bridge]);
    }
    const nsPath = `/proc/${info.pid}/ns/net`;
    for (const iface of await readNetnsInterfaces(this.tools, nsPath)) await this.ipIn(nsPath, ['link', 'set', iface.ifname, 'up']);
    this.fenced.delete(id);
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    const info = await this.inspect(id);
    if (info.pid === undefined) return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, `/proc/${info.pid}/ns/net`);
  }

  /**
   * Stops the container (thawed first: a frozen task cannot die) and destroys it with its directory and rootfs.
   * A container LXC does not know is not an error.
   */
  async remove(id: string): Promise<void> {
    assertName(id);
    let where: Located;
    try {
      where = this.locate(id);
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return;
      throw err;
    }
    await this.stopAndDestroy(where);
  }

  /** Stops a running container (`lxc-stop -k`) and leaves it defined; for tests and tools. */
  async stop(id: string): Promise<void> {
    const where = this.locate(id);
    const info = await this.describe(where);
    if (info.state === 'stopped') return;
    if (info.freezerPath) this.thawQuietly(info.freezerPath);
    await this.lxc('lxc-stop', ['-P', where.lxcpath, '-n', id, '-k'], `stop ${id}`);
  }

  // ------------------------------------------------------------------------------------------------ internals

  private locate(id: string): Located {
    assertName(id);
    for (const lxcpath of this.options.lxcPaths) {
      if (existsSync(join(lxcpath, id, 'config'))) return { lxcpath, name: id, dir: join(lxcpath, id) };
    }
    throw new FerryError('ERR_RUNTIME_NOT_FOUND', `LXC has no container named ${id} (looked in ${this.options.lxcPaths.join(', ')})`, {
      hint: 'Run `ferry ps` to see the containers ferry can find; containers in another lxcpath need `-P PATH` (FERRY_LXC_PATH).',
      details: { id, lxcPaths: this.options.lxcPaths },
    });
  }

  private async lxcInfo(where: Located): Promise<LxcInfo> {
    const outcome = await this.cli.run('lxc-info', ['-P', where.lxcpath, '-n', where.name, '-s', '-p'], { timeoutMs: this.options.commandTimeoutMs });
    if (!outcome.ok) throw runtimeFailure(`lxc-info of ${where.name}`, outcome);
    const state = /^State:\s*(\S+)/m.exec(outcome.stdout)?.[1] ?? 'UNKNOWN';
    const pid = Number(/^PID:\s*(\d+)/m.exec(outcome.stdout)?.[1] ?? NaN);
    return Number.isInteger(pid) && pid > 0 ? { state, pid } : { state };
  }

  /** ContainerInfo from lxc-info, the config and /proc; `thaw` thaws a frozen cgroup first (after a restore). */
  private async describe(where: Located, read: { thaw?: boolean } = {}): Promise<ContainerInfo> {
    const info = await this.lxcInfo(where);
    let state = stateOf(info.state);
    const container: ContainerInfo = { ref: { runtime: 'lxc', id: where.name }, state, bundle: where.dir };
    try {
      const rootfs = rootfsPathOf(readLxcConfig(join(where.dir, 'config')));
      if (rootfs) container.rootfs = rootfs;
    } catch {
      /* unreadable config: no rootfs */
    }
    if (info.pid !== undefined && state !== 'stopped') {
      container.pid = info.pid;
      try {
        const freezerPath = freezerPathOf(readFileSync(`/proc/${info.pid}/cgroup`, 'utf8'), this.cgroups());
        if (freezerPath) {
          container.freezerPath = freezerPath;
          const freezer = Freezer.at(freezerPath);
          if (read.thaw && freezer.state() !== 'thawed') freezer.thaw();
          // The freezer is the truth: liblxc's view of a container it restored frozen lags behind.
          state = freezer.state() === 'thawed' ? 'running' : 'paused';
          container.state = state;
        }
      } catch {
        /* exited meanwhile */
      }
      try {
        const interfaces = await readNetnsInterfaces(this.tools, `/proc/${info.pid}/ns/net`);
        container.netns = { addresses: interfaces.flatMap((i) => i.addresses) };
      } catch {
        /* namespace gone or unreadable: no addresses */
      }
    }
    return container;
  }

  private freezerOf(info: ContainerInfo): Freezer {
    if (!info.freezerPath) {
      throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `LXC container ${info.ref.id} is ${info.state}: nothing to freeze or thaw`, {
        hint: `Start it first (\`lxc-start -n ${info.ref.id}\`).`,
      });
    }
    return Freezer.at(info.freezerPath);
  }

  private thawQuietly(freezerPath: string): void {
    try {
      Freezer.at(freezerPath).thaw();
    } catch {
      /* gone */
    }
  }

  /** The first container task that holds a terminal, from the freezer cgroup's task list. */
  private terminalHolder(container: ContainerInfo): { pid: number; fd: string; target: string } | undefined {
    const pids = new Set<number>();
    if (container.pid !== undefined) pids.add(container.pid);
    if (container.freezerPath) {
      for (const file of ['cgroup.procs', 'tasks']) {
        try {
          for (const p of readFileSync(join(container.freezerPath, file), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
        } catch {
          /* not this file on this cgroup version */
        }
      }
    }
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
          if (TERMINAL.test(target)) return { pid, fd, target };
        } catch {
          /* closed meanwhile */
        }
      }
    }
    return undefined;
  }

  private apparmor(): boolean {
    if (this.options.apparmor !== undefined) return this.options.apparmor;
    try {
      return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
    } catch {
      return false;
    }
  }

  private cgroups(): CgroupInfo {
    this.cgroupInfo ??= parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    return this.cgroupInfo;
  }

  private async lxc(tool: string, args: string[], what: string): Promise<LxcOutcome> {
    const outcome = await this.cli.run(tool, args, { timeoutMs: this.options.commandTimeoutMs });
    if (!outcome.ok) throw runtimeFailure(what, outcome);
    return outcome;
  }

  private async stopAndDestroy(where: Located): Promise<void> {
    const info = await this.describe(where).catch(() => undefined);
    if (info && info.state !== 'stopped') {
      if (info.freezerPath) this.thawQuietly(info.freezerPath);
      await this.lxc('lxc-stop', ['-P', where.lxcpath, '-n', where.name, '-k'], `stop ${where.name}`);
    }
    await this.lxc('lxc-destroy', ['-P', where.lxcpath, '-n', where.name], `destroy ${where.name}`);
  }

  /** Undoes a failed restore: stops what liblxc may have started, and removes a directory the adapter placed. */
  private async undoRestore(where: Located, placed: boolean): Promise<void> {
    try {
      const info = await this.describe(where);
      if (info.state !== 'stopped') {
        if (info.freezerPath) this.thawQuietly(info.freezerPath);
        await this.cli.run('lxc-stop', ['-P', where.lxcpath, '-n', where.name, '-k'], { timeoutMs: this.options.commandTimeoutMs });
      }
    } catch {
      /* best effort: the restore error is what the caller needs */
    }
    if (placed) rmSync(where.dir, { recursive: true, force: true });
  }

  /** After a checkpoint was killed at its deadline: CRIU may have left the cgroup frozen; a running one runs again. */
  private recoverAfterKilledCheckpoint(before: ContainerInfo): void {
    if (before.state === 'running' && before.freezerPath) this.thawQuietly(before.freezerPath);
  }

  /** The host-side ends of the container's veth links (lxc-info's "Link:" lines). */
  private async hostLinks(where: Located): Promise<string[]> {
    const outcome = await this.cli.run('lxc-info', ['-P', where.lxcpath, '-n', where.name], { timeoutMs: this.options.commandTimeoutMs });
    if (!outcome.ok) throw runtimeFailure(`lxc-info of ${where.name}`, outcome);
    return [...outcome.stdout.matchAll(/^Link:\s*(\S+)/gm)].map((m) => m[1]!).filter((l) => /^[A-Za-z0-9_.@-]{1,15}$/.test(l));
  }

  private async ipHere(args: string[]): Promise<void> {
    try {
      await run(this.tools.ipPath, args);
    } catch (err) {
      throw new FerryError('ERR_RUNTIME_FAILED', `ip ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
        hint: 'Check the container\'s host-side links with `lxc-info -n NAME` and `ip link`.',
        cause: err,
      });
    }
  }

  private async ipIn(nsPath: string, args: string[]): Promise<void> {
    try {
      await run(this.tools.nsenterPath, [`--net=${nsPath}`, this.tools.ipPath, ...args]);
    } catch (err) {
      throw new FerryError('ERR_RUNTIME_FAILED', `ip ${args.join(' ')} in ${nsPath} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
        hint: 'Check the container network namespace with `lxc-attach -n NAME -- ip link`.',
        cause: err,
      });
    }
  }

  private criuFailure(code: 'ERR_CRIU_DUMP_FAILED' | 'ERR_CRIU_RESTORE_FAILED', what: string, id: string, outcome: LxcOutcome, logPath: string, timeoutMs: number): FerryError {
    const excerpt = existsSync(logPath) ? readLogExcerpt(logPath) : undefined;
    const lines = excerpt?.lines.length ? `\n${excerpt.lines.map((l) => `  ${l}`).join('\n')}` : '';
    const details = { id, argv: outcome.args, exitCode: outcome.exitCode, lxcError: outcome.errorText, logPath: excerpt ? logPath : undefined, logExcerpt: excerpt?.lines };
    if (outcome.aborted) return new FerryError('ERR_ABORTED', `LXC ${what} of ${id} interrupted`, { hint: 'Run the command again when ready.', details });
    if (outcome.timedOut) {
      return new FerryError('ERR_CRIU_TIMEOUT', `LXC ${what} of ${id} did not finish within ${timeoutMs} ms; CRIU was killed${lines}`, {
        hint: 'Read the CRIU log; raise the adapter\'s timeout for very large containers.',
        details,
      });
    }
    // liblxc names CRIU in its messages when CRIU ran and failed (it may die before it writes a log: a signal).
    if (!excerpt && !/criu/i.test(outcome.errorText)) return runtimeFailure(`${what} of ${id}`, outcome);
    const log = excerpt ? ` (log: ${logPath})` : '';
    return new FerryError(code, `LXC ${what} of ${id} failed: ${outcome.errorText.split('\n').filter(Boolean).slice(0, 3).join('; ') || 'see the log'}${log}${lines}`, {
      hint: `Read ${logPath} for the full story; \`ferry doctor\` checks the host.`,
      details,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------

function stateOf(lxcState: string): ContainerState {
  switch (lxcState) {
    case 'RUNNING':
    case 'STARTING':
      return 'running';
    case 'FROZEN':
    case 'FREEZING':
      return 'paused';
    case 'STOPPED':
    case 'STOPPING':
    case 'ABORTING':
      return 'stopped';
    default:
      return 'unknown';
  }
}

/** The bridge a host-side link is enslaved to (/sys/class/net/LINK/master), if any. */
function bridgeOf(link: string): string | undefined {
  try {
    return basename(readlinkSync(`/sys/class/net/${link}/master`));
  } catch {
    return undefined;
  }
}

/** Moves a directory into place: a rename where possible, a copy and delete across filesystems. */
function moveDir(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    rmSync(from, { recursive: true, force: true });
  }
}

/** Points config values that named the old container directory (rootfs, mount entries, logs) at the new one. */
function rewriteConfigPaths(configPath: string, oldDir: string, newDir: string): void {
  const text = readFileSync(configPath, 'utf8');
  const rewritten = text
    .split('\n')
    .map((line) => (/^\s*#/.test(line) ? line : line.split(`${oldDir}/`).join(`${newDir}/`)))
    .join('\n');
  if (rewritten !== text) writeFileSync(configPath, rewritten);
}

/** Calls onReady once something listens on TCP `port` in this network namespace (polled from /proc/net). */
function watchListening(port: number, onReady: () => void): { stop(): void } {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const listening = () =>
    ['/proc/net/tcp', '/proc/net/tcp6'].some((file) => {
      try {
        return readFileSync(file, 'utf8')
          .split('\n')
          .some((line) => {
            const fields = line.trim().split(/\s+/);
            return `${fields[1] ?? ''} `.endsWith(hex) && fields[3] === '0A';
          });
      } catch {
        return false;
      }
    });
  const timer = setInterval(() => {
    if (listening()) {
      clearInterval(timer);
      onReady();
    }
  }, 5);
  return { stop: () => clearInterval(timer) };
}


function assertLxc(ref: ContainerRef): void {
  if (ref.runtime !== 'lxc') throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the LXC adapter was asked about a ${ref.runtime} container (${ref.id})`);
  assertName(ref.id);
}

function assertName(name: string): void {
  if (!LXC_NAME.test(name)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${name}" is not a valid LXC container name`, {
      hint: 'LXC names use letters, digits and _ + - . and do not start with - . or +.',
    });
  }
}

function nameTaken(name: string, dir: string): FerryError {
  return new FerryError('ERR_RUNTIME_NAME_TAKEN', `LXC already has a container named ${name} (${dir})`, {
    hint: `Restore under another name (--name), or remove it first (\`lxc-destroy -f -n ${name}\`).`,
    details: { name, dir },
  });
}


function runtimeFailure(what: string, outcome: LxcOutcome): FerryError {
  const reason = outcome.timedOut ? 'timed out' : outcome.errorText || `exit code ${outcome.exitCode}`;
  return new FerryError('ERR_RUNTIME_FAILED', `LXC ${what} failed: ${reason}`, {
    hint: 'Check the container with `lxc-ls -f` (and `lxc-info -n NAME`); `ferry doctor` checks the host.',
    details: { tool: outcome.tool, argv: outcome.args, exitCode: outcome.exitCode, stderr: outcome.stderr.slice(-2000) },
  });
}


