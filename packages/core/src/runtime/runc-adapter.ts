/**
 * The runc adapter: ferry's reference runtime adapter. A new runtime (LXC, Docker, ...) copies this file's shape:
 * resolve options once, find containers through the runtime's own tool, refuse what CRIU cannot dump before anything
 * is frozen, let the runtime drive CRIU (it owns the container's state and knows its mounts), record what the runtime
 * and CRIU do not keep next to the images, and undo every side effect of a failed restore.
 *
 * The contract (RuntimeAdapter, runtime-adapter.ts), as runc meets it:
 * - inspect()/list() only read: `runc state` / `runc list`, the bundle's config.json, /proc/PID/cgroup and the
 *   container's network namespace. A missing container is ERR_RUNTIME_NOT_FOUND with a `ferry ps` hint.
 * - checkpoint(): `runc checkpoint` (CRIU underneath). With leaveRunning the container keeps running, or stays paused
 *   when it was paused: this is how the migration engine holds a container after the final dump (pause() first, then
 *   checkpoint with leaveRunning, then remove() to commit or resume() to roll back; verified with runc 1.1.5 and
 *   CRIU 4.2.1: the cgroup stays FROZEN across the dump and the workload does not advance). Without leaveRunning runc
 *   removes the container once CRIU succeeded. When checkpoint() throws, the container is as it was before the call.
 * - restore(): `runc restore -d` under the checkpointed or a new name. When it returns the container runs; when it
 *   throws nothing of it runs, runc holds no container of that name and the network namespace and bundle copy the
 *   adapter made for it are gone.
 * - pause()/resume() are idempotent (a rollback may resume twice); remove() of a missing container only cleans what
 *   the adapter made for it.
 *
 * Why runc drives CRIU instead of ferry's own CRIU client: `runc restore` needs runc's own metadata (descriptors.json,
 * the external-mount map for bind mounts, the netns inherit-fd) and must own the restored container's state, or
 * `runc state/kill/delete` would not know it. ferry's CRIU client stays for bare processes and the page server.
 * onNotify is therefore not supported here: runc keeps CRIU's notify channel to itself.
 *
 * Files and fds: every runc call is a child process with argv (never a shell); `run -d` and `restore -d` get
 * /dev/null as stdio (the container inherits them) and write runc's messages to a log file in the work dir.
 * Everything the adapter creates for a restored container (a network namespace, a rewritten config.json) is noted in
 * STATE_DIR/NAME/owned.json before it is created, so remove() and a failed restore can undo it.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readlinkSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { excerptCriuLog, readLogExcerpt, type LogExcerpt } from '../criu/criu-log';
import { parseCgroupLayout, type CgroupInfo } from '../host/cgroup-layout';
import { findExecutable } from '../host/find-executable';
import { createImageDir } from '../image/image-dir';
import type { ContainerInfo, ContainerRef, NetworkAddress } from '../model/container';
import type { ErrorCode } from '../model/error-codes';
import { FerryError, isFerryError } from '../model/ferry-error';
import type {
  CheckpointOptions,
  CheckpointResult,
  RestoreOptions,
  RestoreResult,
  RuntimeAdapter,
  RuntimeAvailability,
} from './runtime-adapter';
import { RuncCli, runcCheckpointArgs, type RuncOutcome } from './runc-cli';
import { createNetns, deleteNetns, netnsPath, netnsTies, raiseUplink, readNetnsInterfaces, type NetnsInterface, type NetnsTools, type NetnsUplink } from './runc-netns';
import { readCheckpointRecord, writeCheckpointRecord, type CheckpointRecord } from './runc-record';
import { execFile } from 'node:child_process';
import {
  containerStateOf,
  freezerPathOf,
  networkNamespaceOf,
  parseRuncList,
  parseRuncState,
  rewriteConfigForRestore,
  relocatePaths,
  rootfsOf,
  stdioProblem,
  type OciConfig,
  type RuncStateJson,
} from './runc-state';
import { assertImagesDir, checkpointStats, stoppedAfterDump, throwIfAborted } from './adapter-common';

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------------
// Options: resolved once into a frozen object with every default filled in; unknown keys are rejected.

export interface RuncAdapterOptions {
  /** The runc binary; default: `runc` found in searchPath. */
  runcPath: string;
  /** runc's state root, passed as `runc --root` only when set (runc's default is /run/runc). */
  runcRoot: string | undefined;
  /** Where the adapter notes what it created for restored containers (netns, config.json copies). */
  stateDir: string;
  ipPath: string;
  nsenterPath: string;
  umountPath: string;
  /** PATH-style list used to find the tools above (the CLI passes the environment's; core never reads env). */
  searchPath: string;
  /** Prefix of network namespaces the adapter creates: PREFIX + container name. */
  netnsPrefix: string;
  /** Where re-created container interfaces plug in (a LAN bridge); without it they stay inside the namespace. */
  netnsUplink: NetnsUplink | undefined;
  /** Deadline of `runc checkpoint`; CRIU and its children are killed after it. */
  checkpointTimeoutMs: number;
  /**
   * Deadline of `runc restore`. Needed: CRIU 4.2.1 spins forever (and grows restore.log by ~50 MB/s) when a pages
   * image is shorter than its pagemap says, e.g. after a truncated transfer.
   */
  restoreTimeoutMs: number;
  /** Deadline of the quick commands (state, list, pause, resume, kill, delete). */
  commandTimeoutMs: number;
}

export const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_RUNC_STATE_DIR = '/run/ferry/runc';
export const DEFAULT_NETNS_PREFIX = 'ferry-ct-';
export const DEFAULT_CHECKPOINT_TIMEOUT_MS = 300_000;
export const DEFAULT_RESTORE_TIMEOUT_MS = 300_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

const OPTION_KEYS: readonly (keyof RuncAdapterOptions)[] = [
  'runcPath',
  'runcRoot',
  'stateDir',
  'ipPath',
  'nsenterPath',
  'umountPath',
  'searchPath',
  'netnsPrefix',
  'netnsUplink',
  'checkpointTimeoutMs',
  'restoreTimeoutMs',
  'commandTimeoutMs',
];

export function resolveRuncAdapterOptions(input: Partial<RuncAdapterOptions> = {}): Readonly<RuncAdapterOptions> {
  for (const key of Object.keys(input)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      const guess = closest(key, OPTION_KEYS);
      throw new FerryError(
        'ERR_PRECHECK_BAD_INPUT',
        `runc adapter: unknown option "${key}"${guess ? `; did you mean "${guess}"?` : ''}`,
        { details: { known: OPTION_KEYS } },
      );
    }
  }
  const searchPath = input.searchPath ?? DEFAULT_SEARCH_PATH;
  const tool = (name: string, given: string | undefined) => given ?? findExecutable(name, searchPath) ?? name;
  for (const key of ['checkpointTimeoutMs', 'restoreTimeoutMs', 'commandTimeoutMs'] as const) {
    const value = input[key];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `runc adapter: ${key} must be a positive number, got ${value}`);
    }
  }
  return Object.freeze({
    runcPath: tool('runc', input.runcPath),
    runcRoot: input.runcRoot,
    stateDir: input.stateDir ?? DEFAULT_RUNC_STATE_DIR,
    ipPath: tool('ip', input.ipPath),
    nsenterPath: tool('nsenter', input.nsenterPath),
    umountPath: tool('umount', input.umountPath),
    searchPath,
    netnsPrefix: input.netnsPrefix ?? DEFAULT_NETNS_PREFIX,
    netnsUplink: input.netnsUplink,
    checkpointTimeoutMs: input.checkpointTimeoutMs ?? DEFAULT_CHECKPOINT_TIMEOUT_MS,
    restoreTimeoutMs: input.restoreTimeoutMs ?? DEFAULT_RESTORE_TIMEOUT_MS,
    commandTimeoutMs: input.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  });
}

/** The recorded interfaces with addresses replaced where `readdress` names the interface, and a fresh MAC. */
function readdressed(interfaces: readonly NetnsInterface[], readdress: Readonly<Record<string, string>> | undefined): NetnsInterface[] {
  if (!readdress) return [...interfaces];
  for (const ifname of Object.keys(readdress)) {
    if (!interfaces.some((i) => i.ifname === ifname)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the container has no interface ${ifname} to give a new address`, {
        hint: `Interfaces: ${interfaces.map((i) => i.ifname).join(', ') || 'none'}.`,
      });
    }
  }
  return interfaces.map((iface) => {
    const address = readdress[iface.ifname];
    if (!address) return iface;
    const family = address.includes(':') ? 'inet6' : 'inet';
    const { mac: _old, ...rest } = iface;
    return { ...rest, addresses: [{ ifname: iface.ifname, family, address }] };
  });
}

/** Calls onReady once `path` is no longer empty (polled: inotify would add nothing for a one-byte file). */
function watchStatusFile(path: string, onReady: () => void): { stop(): void } {
  const timer = setInterval(() => {
    try {
      if (statSync(path).size > 0) {
        clearInterval(timer);
        onReady();
      }
    } catch {
      /* not there yet */
    }
  }, 5);
  return { stop: () => clearInterval(timer) };
}

/** runc's container ids: [\w+-.]; ferry also refuses a leading '-' so an id can never read as a flag. */
const RUNC_ID = /^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/;

/** The log files CRIU writes into runc's work path. */
const DUMP_LOG = 'dump.log';
const RESTORE_LOG = 'restore.log';
/** runc's own messages during `restore -d` (its stdio are /dev/null then). */
const RUNC_RESTORE_LOG = 'runc-restore.log';
/** Above this size a CRIU log is read from its tail only (a spinning restore writes gigabytes). */
const LOG_TAIL_LIMIT_BYTES = 8 << 20;

/** What the adapter created for one restored container; undone by remove() and by a failed restore. */
interface OwnedResources {
  netns?: string;
  bundleCopy?: string;
  /** Uplink ends a restore with holdNetwork left down, until releaseNetwork(). */
  heldUplink?: string[];
}

export class RuncAdapter implements RuntimeAdapter {
  readonly name = 'runc' as const;
  readonly features = { lazyPages: true, preDump: true, relocatablePaths: true } as const;
  readonly options: Readonly<RuncAdapterOptions>;
  private readonly cli: RuncCli;
  private readonly tools: NetnsTools;
  private cgroupInfo: CgroupInfo | undefined;

  constructor(options: Partial<RuncAdapterOptions> = {}) {
    this.options = resolveRuncAdapterOptions(options);
    this.cli = new RuncCli({ runcPath: this.options.runcPath, runcRoot: this.options.runcRoot });
    this.tools = { ipPath: this.options.ipPath, nsenterPath: this.options.nsenterPath };
  }

  // ------------------------------------------------------------------------------------------------ finding

  async availability(): Promise<RuntimeAvailability> {
    let outcome: RuncOutcome;
    try {
      outcome = await this.cli.run(['--version'], { timeoutMs: this.options.commandTimeoutMs });
    } catch (err) {
      return { usable: false, reason: (err as Error).message };
    }
    if (!outcome.ok) return { usable: false, reason: `runc --version failed: ${outcome.errorText || outcome.stderr}` };
    const version = /runc version (\S+)/.exec(outcome.stdout)?.[1];
    if (process.getuid?.() !== 0) return { usable: false, reason: 'runc checkpoint/restore need root', version };
    return version === undefined ? { usable: true } : { usable: true, version };
  }

  async list(): Promise<ContainerInfo[]> {
    const outcome = await this.runc(['list', '--format', 'json'], 'list containers');
    const states = parseRuncList(outcome.stdout);
    return Promise.all(states.map((state) => this.describe(state)));
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return this.describe(await this.state(id));
  }

  // ------------------------------------------------------------------------------------------------ preflight

  /**
   * Refuses configurations CRIU cannot dump, before anything is frozen: a console (`process.terminal`), and stdio
   * that is a terminal, a host file or a socket instead of /dev/null or a pipe.
   */
  async preflight(container: ContainerInfo): Promise<void> {
    assertRunc(container.ref);
    if (container.state !== 'running' && container.state !== 'paused') {
      throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `runc container ${container.ref.id} is ${container.state}`, {
        hint: `Start it first (\`runc start ${container.ref.id}\`); only running or paused containers can be checkpointed.`,
        details: { id: container.ref.id, state: container.state },
      });
    }
    const config = this.readBundleConfig(container);
    const unsupported = (reason: string, hint: string) =>
      new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `runc container ${container.ref.id} cannot be checkpointed: ${reason}`, {
        hint,
        details: { id: container.ref.id, bundle: container.bundle },
      });
    if (config.process?.terminal === true) {
      throw unsupported(
        'it has a terminal (process.terminal is true in config.json)',
        'Run it without a terminal: "terminal": false, stdio on /dev/null or pipes (`runc run -d ... </dev/null >/dev/null 2>&1`).',
      );
    }
    if (container.pid !== undefined) {
      const links = [0, 1, 2].map((fd) => {
        try {
          return readlinkSync(`/proc/${container.pid}/fd/${fd}`);
        } catch {
          return undefined;
        }
      });
      const problem = stdioProblem(links);
      if (problem) {
        throw unsupported(problem, 'Start the container with stdio on /dev/null or pipes; CRIU cannot dump files outside the container.');
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ checkpoint

  /**
   * Steps: find the container and check it (inspect + preflight), read what runc will not dump (config.json, the
   * netns interfaces), let runc run CRIU, then write ferry-container.json and measure. The record is written only
   * after CRIU succeeded, so an images directory with a record is a complete one.
   */
  async checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    assertRunc(ref);
    if (options.onNotify) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'the runc adapter cannot pass CRIU notifications (runc keeps them)', {
        hint: 'Hold the container with pause() and checkpoint it with leaveRunning instead.',
      });
    }
    throwIfAborted(options.signal, `checkpoint of ${ref.id}`);
    // The container may be frozen already (the migration's hold): read only what is needed, once.
    const before = await this.describe(await this.state(ref.id), { netns: false });
    await this.preflight(before);
    const config = this.readBundleConfig(before);
    // What runc does not dump: the joined network namespace. Read it now; after the dump it may be gone.
    const ns = networkNamespaceOf(config);
    let interfaces: NetnsInterface[] = [];
    if (ns) {
      interfaces = await readNetnsInterfaces(this.tools, ns.path ?? `/proc/${before.pid}/ns/net`);
      const addresses = interfaces.flatMap((i) => i.addresses);
      before.netns = ns.path ? { path: ns.path, addresses } : { addresses };
    }

    const imagesDir = createImageDir(resolve(options.imagesDir));
    const workDir = resolve(options.workDir ?? imagesDir);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const leaveRunning = options.leaveRunning === true || options.preDump === true;
    const lazy = options.lazyPages;
    const args = runcCheckpointArgs(imagesDir, workDir, options, ref.id);

    const record: CheckpointRecord = {
      format: 'ferry-container/1',
      runtime: 'runc',
      id: ref.id,
      bundle: before.bundle ?? '',
      config,
      criu: {
        tcpEstablished: options.tcpEstablished === true,
        fileLocks: options.fileLocks === true,
        extUnixSk: options.extUnixSk === true,
        leaveRunning,
      },
      checkpointedAt: new Date().toISOString(),
    };
    if (before.rootfs) record.rootfs = before.rootfs;
    if (ns) record.netns = ns.path ? { path: ns.path, interfaces } : { interfaces };
    // A lazy dump's images are complete (and may be sent) long before runc exits: the record must be there first.
    if (lazy) writeCheckpointRecord(imagesDir, record);

    // CRIU writes one byte to the status fd once the images are written and the page server listens. runc wants
    // a plain writable fd (it refuses Node's socketpair 'pipe'), so a file in the work dir is watched instead.
    const statusPath = join(workDir, 'lazy-status');
    const statusFd = lazy ? openSync(statusPath, 'w', 0o600) : undefined;
    const watch = lazy ? watchStatusFile(statusPath, lazy.onReady) : undefined;
    const started = Date.now();
    let outcome: RuncOutcome;
    try {
      outcome = await this.cli.run(args, { timeoutMs: this.options.checkpointTimeoutMs, signal: options.signal, statusFd });
    } finally {
      watch?.stop();
      if (statusFd !== undefined) closeSync(statusFd);
    }
    if (!outcome.ok) {
      if (outcome.timedOut || outcome.aborted) await this.recoverAfterKilledCheckpoint(before);
      const code = options.preDump ? 'ERR_CRIU_PRE_DUMP_FAILED' : 'ERR_CRIU_DUMP_FAILED';
      throw this.criuFailure(code, 'checkpoint', ref.id, outcome, join(workDir, DUMP_LOG), started, this.options.checkpointTimeoutMs);
    }

    if (!lazy) writeCheckpointRecord(imagesDir, record);

    const stats = await checkpointStats(imagesDir, workDir, outcome.durationMs);
    let container: ContainerInfo;
    if (leaveRunning) {
      container = await this.inspect(ref.id).catch(() => before);
    } else {
      container = stoppedAfterDump(before);
    }
    return { container, imagesDir, stats };
  }

  // ------------------------------------------------------------------------------------------------ restore

  /**
   * Steps: read the record, refuse a taken name, make sure the network namespace exists (re-create it with the
   * recorded addresses when its path does not exist on this host, or when the original container still holds it),
   * rewrite config.json when the name or the netns path changed, then `runc restore -d`. Every side effect is noted
   * in owned.json before it happens and undone when a later step fails.
   */
  async restore(options: RestoreOptions): Promise<RestoreResult> {
    throwIfAborted(options.signal, 'restore');
    // Network steps that must wait until the restored sockets exist (see createNetns).
    const afterRestore: (() => Promise<void>)[] = [];
    const imagesDir = resolve(options.imagesDir);
    assertImagesDir(imagesDir);
    const record = readCheckpointRecord(imagesDir);
    const name = options.name ?? record?.id;
    if (name === undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${imagesDir} has no ferry-container.json: the name is unknown`, {
        hint: 'Pass the name and the bundle to restore into.',
      });
    }
    assertId(name);
    if (await this.exists(name)) {
      throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `runc already has a container named ${name}`, {
        hint: `Restore under another name, or remove it first (\`runc delete -f ${name}\`).`,
        details: { name },
      });
    }
    // The name is free in runc: whatever an earlier container of that name left behind is stale.
    await this.releaseOwned(name);

    const sourceBundle = resolve(options.bundle ?? record?.bundle ?? '.');
    const bundleConfig = tryReadConfig(join(sourceBundle, 'config.json'));
    const config = bundleConfig ?? record?.config;
    if (!config) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no config.json in ${sourceBundle} and none recorded in ${imagesDir}`, {
        hint: 'Pass the bundle to restore into.',
      });
    }
    const workDir = resolve(options.workDir ?? imagesDir);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const owned: OwnedResources = {};
    const started = Date.now();
    try {
      // 1. The network namespace: runc joins it by path and hands it to CRIU as external; it must exist first. A
      //    copy restored beside its still-present original cannot share the original's namespace either (its
      //    listening and connected sockets hold the addresses: CRIU fails with EADDRINUSE), so it gets its own.
      let newNetnsPath: string | undefined;
      const ns = networkNamespaceOf(config);
      const nsMissing = ns?.path !== undefined && !existsSync(ns.path);
      const nsHeldByOriginal =
        ns?.path !== undefined && !nsMissing && record !== undefined && record.id !== name && (await this.usesNetns(record.id, ns.path));
      if (ns?.path !== undefined && (nsMissing || nsHeldByOriginal)) {
        const nsName = `${this.options.netnsPrefix}${name}`;
        if (existsSync(netnsPath(nsName))) {
          throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `network namespace ${nsName} exists already`, {
            hint: `Remove it (\`ip netns delete ${nsName}\`) if no container uses it, or restore under another name.`,
            details: { netns: nsName },
          });
        }
        owned.netns = nsName;
        this.writeOwned(name, owned);
        const uplink = this.options.netnsUplink;
        newNetnsPath = await createNetns(this.tools, nsName, readdressed(record?.netns?.interfaces ?? [], options.readdress), uplink, (peers) => {
          if (!options.holdNetwork) return afterRestore.push(() => raiseUplink(this.tools, uplink!, peers));
          // Held until releaseNetwork(), perhaps by another process: noted where that one finds it.
          owned.heldUplink = peers;
          this.writeOwned(name, owned);
          return undefined;
        });
      } else if (ns?.path !== undefined) {
        // The namespace is still here (the container comes back to a host it left): a migration fenced its links
        // when it moved away. They must be up before the restore: CRIU reconnects the TCP sockets through them.
        for (const iface of record?.netns?.interfaces ?? []) await this.ipIn(ns.path, ['link', 'set', iface.ifname, 'up']);
      }
      // 2. The bundle: the original one when nothing changes, else a copy of config.json in the state dir.
      const rewritten = rewriteConfigForRestore(config, {
        bundle: sourceBundle,
        ...(newNetnsPath === undefined ? {} : { netnsPath: newNetnsPath }),
        oldName: record?.id ?? name,
        newName: name,
      });
      if (options.relocate) relocatePaths(rewritten, options.relocate);
      let bundle = sourceBundle;
      const pathsOf = (c: OciConfig) => JSON.stringify([c.root, c.mounts]);
      const changed = JSON.stringify(rewritten.linux) !== JSON.stringify(config.linux) || pathsOf(rewritten) !== pathsOf(config);
      if (bundleConfig === undefined || changed) {
        bundle = join(this.options.stateDir, name, 'bundle');
        owned.bundleCopy = bundle;
        this.writeOwned(name, owned);
        mkdirSync(bundle, { recursive: true, mode: 0o700 });
        writeFileSync(join(bundle, 'config.json'), JSON.stringify(rewritten, null, 2), { mode: 0o600 });
      }
      // 3. runc restores; CRIU's flags repeat the dump's unless the caller says otherwise.
      const args = ['restore', '--detach', '--image-path', imagesDir, '--work-path', workDir, '--bundle', bundle];
      if (options.tcpEstablished ?? record?.criu.tcpEstablished) args.push('--tcp-established');
      if (options.lazyPages) args.push('--lazy-pages');
      if (options.fileLocks ?? record?.criu.fileLocks) args.push('--file-locks');
      if (options.extUnixSk ?? record?.criu.extUnixSk) args.push('--ext-unix-sk');
      args.push(name);
      const logFile = join(workDir, RUNC_RESTORE_LOG);
      rmIfExists(logFile);
      const outcome = await this.cli.run(args, { logFile, timeoutMs: this.options.restoreTimeoutMs, signal: options.signal });
      if (!outcome.ok) {
        if (outcome.timedOut || outcome.aborted) await this.cleanupKilledRestore(name, workDir, rewritten);
        const logPath = join(workDir, RESTORE_LOG);
        throw this.criuFailure('ERR_CRIU_RESTORE_FAILED', 'restore', name, outcome, logPath, started, this.options.restoreTimeoutMs);
      }
      for (const step of afterRestore) await step();
      const container = await this.inspect(name);
      return { container, restoreMs: outcome.durationMs };
    } catch (err) {
      await this.undoRestore(name, owned);
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Freezes the container (`runc pause`, the cgroup freezer). Already paused: nothing to do. */
  async pause(id: string): Promise<void> {
    const state = await this.state(id);
    if (state.status === 'paused') return;
    await this.runc(['pause', id], `pause ${id}`);
  }

  /** Thaws a paused container (`runc resume`). Already running: nothing to do. */
  async resume(id: string): Promise<void> {
    const state = await this.state(id);
    if (state.status === 'running') return;
    await this.runc(['resume', id], `resume ${id}`);
  }

  /**
   * Takes the container's interfaces down in its network namespace while it is frozen for a move. Why: after
   * `checkpoint --leave-running` the source's kernel still owns the TCP sockets and would acknowledge what clients
   * send, so the restored copy's sequence numbers would fall behind and the connections break. With the links
   * down, clients retransmit to whichever copy comes up (and the LAN bridge forgets the old port). unfence() brings
   * them back up (rollback). A container without its own network namespace has nothing to fence.
   */
  async fenceNetwork(id: string): Promise<{ unfence(): Promise<void> }> {
    const info = await this.inspect(id);
    const ns = networkNamespaceOf(this.readBundleConfig(info));
    if (!ns) return { unfence: async () => undefined };
    const nsPath = ns.path ?? `/proc/${info.pid}/ns/net`;
    const interfaces = await readNetnsInterfaces(this.tools, nsPath);
    const setLinks = async (state: 'up' | 'down') => {
      for (const iface of interfaces) {
        await this.ipIn(nsPath, ['link', 'set', iface.ifname, state]);
      }
    };
    await setLinks('down');
    return { unfence: () => setLinks('up') };
  }

  async unfenceNetwork(id: string): Promise<void> {
    const info = await this.inspect(id);
    const ns = networkNamespaceOf(this.readBundleConfig(info));
    if (!ns) return;
    const nsPath = ns.path ?? `/proc/${info.pid}/ns/net`;
    for (const iface of await readNetnsInterfaces(this.tools, nsPath)) await this.ipIn(nsPath, ['link', 'set', iface.ifname, 'up']);
  }

  /** Raises the uplink ends restore({ holdNetwork }) left down (owned.json names them). */
  async releaseNetwork(name: string): Promise<void> {
    assertId(name);
    let owned: OwnedResources;
    try {
      owned = JSON.parse(readFileSync(this.ownedFile(name), 'utf8')) as OwnedResources;
    } catch {
      return;
    }
    const uplink = this.options.netnsUplink;
    if (!owned.heldUplink?.length || !uplink) return;
    await raiseUplink(this.tools, uplink, owned.heldUplink);
    delete owned.heldUplink;
    this.writeOwned(name, owned);
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    const info = await this.inspect(id);
    const ns = networkNamespaceOf(this.readBundleConfig(info));
    if (!ns) return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, ns.path ?? `/proc/${info.pid}/ns/net`);
  }

  private async ipIn(nsPath: string, args: string[]): Promise<void> {
    try {
      await run(this.options.nsenterPath, [`--net=${nsPath}`, this.options.ipPath, ...args]);
    } catch (err) {
      throw new FerryError('ERR_RUNTIME_FAILED', `ip ${args.join(' ')} in ${nsPath} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
        hint: 'Check the container network namespace with `ip -n NAME link`.',
        cause: err,
      });
    }
  }

  /** Sends a signal to the container's init (`runc kill`). */
  async kill(id: string, signal: NodeJS.Signals | 'KILL' | 'TERM' = 'KILL'): Promise<void> {
    await this.state(id);
    await this.runc(['kill', id, signal], `kill ${id}`);
  }

  /**
   * Stops and removes the container (`runc delete --force`, which also works on a paused one) and what the adapter
   * created for it. A container runc does not know is not an error: the clean-up of what ferry made still runs.
   */
  async remove(id: string): Promise<void> {
    assertId(id);
    if (await this.exists(id)) await this.runc(['delete', '--force', id], `delete ${id}`);
    await this.releaseOwned(id);
  }

  // ------------------------------------------------------------------------------------------------ internals

  private async state(id: string): Promise<RuncStateJson> {
    assertId(id);
    const outcome = await this.cli.run(['state', id], { timeoutMs: this.options.commandTimeoutMs });
    if (!outcome.ok) {
      if (/does not exist/.test(outcome.errorText)) {
        throw new FerryError('ERR_RUNTIME_NOT_FOUND', `runc has no container named ${id}`, {
          hint: 'Run `ferry ps` to see the containers ferry can find.',
          details: { id, runcRoot: this.options.runcRoot },
        });
      }
      throw runtimeFailure(`state of ${id}`, outcome);
    }
    return parseRuncState(outcome.stdout);
  }

  private async exists(id: string): Promise<boolean> {
    try {
      await this.state(id);
      return true;
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return false;
      throw err;
    }
  }

  /** True when container `id` exists (running, paused or created) and joined the network namespace at `path`. */
  private async usesNetns(id: string, path: string): Promise<boolean> {
    try {
      const state = await this.state(id);
      if (state.status === 'stopped') return false;
      return networkNamespaceOf(tryReadConfig(join(state.bundle, 'config.json')) ?? {})?.path === path;
    } catch {
      return false;
    }
  }

  private async runc(args: string[], what: string): Promise<RuncOutcome> {
    const outcome = await this.cli.run(args, { timeoutMs: this.options.commandTimeoutMs });
    if (!outcome.ok) throw runtimeFailure(what, outcome);
    return outcome;
  }

  /** ContainerInfo from runc's state plus the bundle and /proc; parts that cannot be read are left out. */
  private async describe(state: RuncStateJson, read: { netns: boolean } = { netns: true }): Promise<ContainerInfo> {
    const info: ContainerInfo = {
      ref: { runtime: 'runc', id: state.id },
      state: containerStateOf(state.status),
      bundle: state.bundle,
      createdAt: state.created,
    };
    const live = state.pid > 0 && ['running', 'paused', 'created', 'pausing'].includes(state.status);
    if (live) info.pid = state.pid;
    const config = tryReadConfig(join(state.bundle, 'config.json'));
    const rootfs = state.rootfs || (config ? rootfsOf(config, state.bundle) : undefined);
    if (rootfs) info.rootfs = rootfs;
    const binds = (config?.mounts ?? []).filter((m) => m.source && (m.type === 'bind' || m.options?.some((o) => o === 'bind' || o === 'rbind')));
    if (binds.length > 0) info.bindMounts = binds.map((m) => resolve(state.bundle, m.source!));
    if (live) {
      try {
        const freezerPath = freezerPathOf(readFileSync(`/proc/${state.pid}/cgroup`, 'utf8'), this.cgroups());
        if (freezerPath) info.freezerPath = freezerPath;
      } catch {
        /* exited meanwhile */
      }
    }
    const ns = config && read.netns ? networkNamespaceOf(config) : undefined;
    if (ns) {
      let addresses: NetworkAddress[] = [];
      if (live) {
        try {
          const interfaces = await readNetnsInterfaces(this.tools, ns.path ?? `/proc/${state.pid}/ns/net`);
          addresses = interfaces.flatMap((i) => i.addresses);
        } catch {
          /* namespace gone or unreadable: no addresses */
        }
      }
      info.netns = ns.path ? { path: ns.path, addresses } : { addresses };
    }
    return info;
  }

  private cgroups(): CgroupInfo {
    this.cgroupInfo ??= parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    return this.cgroupInfo;
  }

  private readBundleConfig(container: ContainerInfo): OciConfig {
    const path = join(container.bundle ?? '', 'config.json');
    const config = tryReadConfig(path);
    if (!config) {
      throw new FerryError('ERR_RUNTIME_FAILED', `cannot read ${path} of runc container ${container.ref.id}`, {
        hint: 'ferry needs the bundle the container was started from; check it was not moved or deleted.',
        details: { id: container.ref.id, bundle: container.bundle },
      });
    }
    return config;
  }

  private criuFailure(
    code: ErrorCode,
    what: 'checkpoint' | 'restore',
    id: string,
    outcome: RuncOutcome,
    logPath: string,
    started: number,
    timeoutMs: number,
  ): FerryError {
    const criuRan = fileWrittenSince(logPath, started);
    const excerpt = criuRan ? criuLogExcerpt(logPath) : undefined;
    const lines = excerpt?.lines.length ? `\n${excerpt.lines.map((l) => `  ${l}`).join('\n')}` : '';
    const details = {
      id,
      argv: outcome.args,
      exitCode: outcome.exitCode,
      runcError: outcome.errorText,
      logPath: criuRan ? logPath : undefined,
      logExcerpt: excerpt?.lines,
    };
    if (outcome.aborted) {
      return new FerryError('ERR_ABORTED', `runc ${what} of ${id} interrupted`, { hint: 'Run the command again when ready.', details });
    }
    if (outcome.timedOut) {
      return new FerryError(
        'ERR_CRIU_TIMEOUT',
        `runc ${what} of ${id} did not finish within ${timeoutMs} ms; CRIU was killed${criuRan ? ` (log: ${logPath})` : ''}${lines}`,
        {
          hint:
            what === 'restore'
              ? 'Check that the images arrived whole (CRIU loops on a truncated pages image); raise restoreTimeoutMs for very large containers.'
              : 'Raise checkpointTimeoutMs for very large containers, and read the CRIU log.',
          details,
        },
      );
    }
    if (!criuRan) return runtimeFailure(`${what} of ${id}`, outcome);
    return new FerryError(code, `runc ${what} of ${id} failed: ${outcome.errorText || 'see the log'} (log: ${logPath})${lines}`, {
      hint: `Read ${logPath} for the full story; \`ferry doctor\` checks the host.`,
      details,
    });
  }

  /**
   * After a checkpoint was killed at its deadline: CRIU may have left the cgroup frozen. A container that was running
   * before the call runs again (the contract: when checkpoint() throws, the container is as it was).
   */
  private async recoverAfterKilledCheckpoint(before: ContainerInfo): Promise<void> {
    if (before.state !== 'running') return;
    try {
      const now = await this.state(before.ref.id);
      if (now.status === 'paused' || now.status === 'pausing') await this.runc(['resume', before.ref.id], `resume ${before.ref.id}`);
    } catch {
      /* gone or unreadable: the caller's error says what happened */
    }
  }

  /**
   * After `runc restore` was killed at its deadline. runc cleans up after a CRIU failure by itself, but a killed CRIU
   * leaves its cgroup yard mounted in the work dir, and runc may leave the cgroups and its state dir: unmount, kill
   * what is left in the container's cgroups, and remove the (then empty) directories. Never a recursive delete:
   * runc's state dir holds the rootfs bind mount (criu-root) while a restore runs.
   */
  private async cleanupKilledRestore(name: string, workDir: string, config: OciConfig): Promise<void> {
    const runcDir = join(this.options.runcRoot ?? '/run/runc', name);
    const criuRoot = join(runcDir, 'criu-root');
    const yardPrefix = `${workDir}/.criu.cgyard.`;
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    const mountpoints = mountinfo
      .split('\n')
      .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
      .filter((mp) => mp.startsWith(yardPrefix) || mp === criuRoot || mp.startsWith(`${criuRoot}/`))
      .sort((a, b) => b.length - a.length);
    for (const mp of mountpoints) {
      await run(this.options.umountPath, [mp]).catch(() => run(this.options.umountPath, ['-l', mp]).catch(() => undefined));
    }
    // The yard directories themselves (WORK/.criu.cgyard.XXXXXX), empty once unmounted.
    const yardOf = (mp: string) => {
      const cut = mp.indexOf('/', yardPrefix.length);
      return cut < 0 ? mp : mp.slice(0, cut);
    };
    const yards = new Set(mountpoints.filter((mp) => mp.startsWith(yardPrefix)).map(yardOf));
    for (const yard of yards) tryRmdir(yard);
    const cgroupsPath = config.linux?.cgroupsPath;
    if (cgroupsPath?.startsWith('/')) {
      const layout = this.cgroups();
      const roots = new Set([...Object.values(layout.v1Controllers), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])]);
      for (const root of roots) {
        const dir = join(root, cgroupsPath);
        killCgroupProcs(dir);
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const root of roots) tryRmdir(join(root, cgroupsPath));
    }
    if (await this.exists(name).catch(() => false)) {
      await this.cli.run(['delete', '--force', name], { timeoutMs: this.options.commandTimeoutMs });
    } else if (existsSync(runcDir) && !existsSync(join(runcDir, 'state.json'))) {
      tryRmdir(join(runcDir, 'criu-root'));
      tryRmdir(runcDir);
    }
  }

  /** Undoes a failed restore: the container if runc made one, then what the adapter created. */
  private async undoRestore(name: string, owned: OwnedResources): Promise<void> {
    try {
      if (await this.exists(name)) await this.cli.run(['delete', '--force', name], { timeoutMs: this.options.commandTimeoutMs });
    } catch {
      /* best effort: the restore error is what the caller needs */
    }
    await this.releaseOwned(name, owned).catch(() => undefined);
  }

  private ownedFile(name: string): string {
    return join(this.options.stateDir, name, 'owned.json');
  }

  private writeOwned(name: string, owned: OwnedResources): void {
    mkdirSync(join(this.options.stateDir, name), { recursive: true, mode: 0o700 });
    writeFileSync(this.ownedFile(name), JSON.stringify(owned), { mode: 0o600 });
  }

  /** Deletes the netns and config.json copy the adapter made for `name` (from owned.json, or the given record). */
  private async releaseOwned(name: string, known?: OwnedResources): Promise<void> {
    let owned = known;
    if (!owned) {
      try {
        owned = JSON.parse(readFileSync(this.ownedFile(name), 'utf8')) as OwnedResources;
      } catch {
        return;
      }
    }
    if (owned.netns) await deleteNetns(this.tools, owned.netns);
    if (owned.bundleCopy) {
      rmIfExists(join(owned.bundleCopy, 'config.json'));
      tryRmdir(owned.bundleCopy);
    }
    rmIfExists(this.ownedFile(name));
    tryRmdir(join(this.options.stateDir, name));
  }
}

// ---------------------------------------------------------------------------------------------------------------


function assertRunc(ref: ContainerRef): void {
  if (ref.runtime !== 'runc') {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the runc adapter was asked about a ${ref.runtime} container (${ref.id})`);
  }
  assertId(ref.id);
}

function assertId(id: string): void {
  if (!RUNC_ID.test(id)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${id}" is not a valid runc container name`, {
      hint: 'runc names use letters, digits and _ + - . and do not start with - . or +.',
    });
  }
}


function runtimeFailure(what: string, outcome: RuncOutcome): FerryError {
  const reason = outcome.timedOut ? 'timed out' : outcome.errorText || outcome.stderr.trim() || `exit code ${outcome.exitCode}`;
  return new FerryError('ERR_RUNTIME_FAILED', `runc ${what} failed: ${reason}`, {
    hint: 'Check the container with `runc list`; `ferry doctor` checks the host.',
    details: { argv: outcome.args, exitCode: outcome.exitCode, stderr: excerpt(outcome.stderr), runcError: outcome.errorText },
  });
}

function excerpt(text: string, max = 2000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

function tryReadConfig(path: string): OciConfig | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as OciConfig;
  } catch {
    return undefined;
  }
}

function fileWrittenSince(path: string, since: number): boolean {
  try {
    return statSync(path).mtimeMs >= since - 1000;
  } catch {
    return false;
  }
}

/** readLogExcerpt, but from the tail when the log is huge (a spinning CRIU writes gigabytes). */
function criuLogExcerpt(path: string): LogExcerpt | undefined {
  try {
    const size = statSync(path).size;
    if (size <= LOG_TAIL_LIMIT_BYTES) return readLogExcerpt(path);
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(1 << 20);
      const n = readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      const text = buffer.subarray(0, n).toString('utf8');
      return excerptCriuLog(text.slice(text.indexOf('\n') + 1));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function killCgroupProcs(dir: string): void {
  for (const file of ['cgroup.procs', 'tasks']) {
    let text: string;
    try {
      text = readFileSync(join(dir, file), 'utf8');
    } catch {
      continue;
    }
    for (const pid of text.split('\n').filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    /* not empty, busy or gone */
  }
}

function rmIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = levenshtein(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
