/**
 * The LXC adapter, shaped like the runc reference adapter (runc-adapter.ts). liblxc drives CRIU (`lxc-checkpoint`):
 * a restored container must be an LXC container afterwards, with the monitor, cgroups and command socket that only
 * liblxc's restore sets up. What `lxc-checkpoint` lacks as flags (page server, lazy pages, TCP connections, a work
 * dir) goes through CRIU's own configuration file (CRIU_CONFIG_FILE, lxc-criu-config.ts).
 *
 * As LXC meets the contract: containers live in the first lxcpath holding NAME/config, and ContainerInfo.bundle is
 * that directory (what a migration copies). A dump without leaveRunning stops the container but keeps its directory
 * (the restore needs it). CRIU restores the freezer state of the dump, so a container held frozen for a move comes
 * back frozen: the restore thaws it. pause()/resume() write the freezer directly: `lxc-unfreeze` does not thaw a
 * container liblxc restored frozen on hybrid cgroup hosts. No incremental dumps (no pre-dump in lxc-checkpoint).
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Freezer } from '../freezer/freezer';
import { findExecutable } from '../host/find-executable';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { DEFAULT_CHECKPOINT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_RESTORE_TIMEOUT_MS, DEFAULT_SEARCH_PATH, resolveAdapterOptions } from './adapter-options';
import { checkpointContainer, type DumpHooks } from './checkpoint-pipeline';
import { watchListening } from './lazy-ready';
import { LxcCli } from './lxc-cli';
import { lxcConfigProblems, readLxcConfig } from './lxc-config';
import { LXC_TOOL_HINT, LxcContainers, lxcNames, type Located } from './lxc-containers';
import { writeLxcCriuConfig } from './lxc-criu-config';
import { placeContainerDir } from './lxc-restore';
import { lxcFence } from './lxc-fence';
import { asFence, liftFence, type Fence, type FenceRecord } from './network-fence';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import { ipIn, netnsTies, type NetnsTools } from './runc-netns';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability } from './runtime-adapter';

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
/** ferry's CRIU options for liblxc's CRIU, in the work dir. */
const CRIU_CONF = 'ferry-criu.conf';

/** The LXC adapter's options: defaults filled in, lxcpaths resolved and de-duplicated, frozen. */
export function resolveLxcAdapterOptions(input: Partial<LxcAdapterOptions> = {}): Readonly<LxcAdapterOptions> {
  const defaults = {
    lxcPaths: [DEFAULT_LXC_PATH],
    searchPath: DEFAULT_SEARCH_PATH,
    checkpointTimeoutMs: DEFAULT_CHECKPOINT_TIMEOUT_MS,
    restoreTimeoutMs: DEFAULT_RESTORE_TIMEOUT_MS,
    commandTimeoutMs: DEFAULT_COMMAND_TIMEOUT_MS,
    apparmor: undefined,
  };
  return resolveAdapterOptions('lxc', input, defaults, (o) => {
    const lxcPaths = [...new Set(o.lxcPaths.map((p) => resolve(p)))];
    if (lxcPaths.length === 0) throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'lxc adapter: no lxcpath');
    return { ...o, lxcPaths: Object.freeze(lxcPaths) };
  });
}

export class LxcAdapter implements RuntimeAdapter {
  readonly name = 'lxc' as const;
  // lxc-checkpoint has no pre-dump: CRIU pre-copy is for runc (and Docker's runc) containers.
  readonly features = { lazyPages: true, preDump: false } as const;
  readonly options: Readonly<LxcAdapterOptions>;
  private readonly cli: LxcCli;
  private readonly tools: NetnsTools;
  private readonly containers: LxcContainers;
  /** Interfaces fenceNetwork() took down, by container: the checkpoint records them for the restore to raise. */
  private readonly fenced = new Map<string, string[]>();

  constructor(options: Partial<LxcAdapterOptions> = {}) {
    this.options = resolveLxcAdapterOptions(options);
    const find = (tool: string) => findExecutable(tool, this.options.searchPath) ?? tool;
    this.cli = new LxcCli(find, this.options.searchPath);
    this.tools = { ipPath: find('ip'), nsenterPath: find('nsenter') };
    this.containers = new LxcContainers(this.cli, this.tools, this.options.lxcPaths, this.options.commandTimeoutMs);
  }

  async availability(): Promise<RuntimeAvailability> {
    const outcome = await this.cli.run('lxc-checkpoint', ['--version'], { timeoutMs: this.options.commandTimeoutMs }).catch((err: Error) => err);
    if (outcome instanceof Error) return { usable: false, reason: outcome.message };
    if (!outcome.ok) return { usable: false, reason: `lxc-checkpoint --version failed: ${outcome.errorText}` };
    const version = outcome.stdout.trim().split('\n')[0];
    if (process.getuid?.() !== 0) return { usable: false, reason: 'LXC checkpoint/restore need root', version };
    return version ? { usable: true, version } : { usable: true };
  }

  list(): Promise<ContainerInfo[]> {
    return this.containers.list();
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return this.containers.describe(this.containers.locate(id));
  }

  /** Refuses the config settings of lxc-config.ts (ttys, AppArmor, host bind mounts) and a task holding a terminal. */
  async preflight(container: ContainerInfo): Promise<void> {
    lxcNames.ref(container.ref);
    const { id } = container.ref;
    if (container.state !== 'running' && container.state !== 'paused') {
      throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `LXC container ${id} is ${container.state}`, {
        hint: `Start it first (\`lxc-start -n ${id}\`); only running or frozen containers can be checkpointed.`,
        details: { id, state: container.state },
      });
    }
    const dir = container.bundle ?? this.containers.locate(id).dir;
    const entries = readLxcConfig(join(dir, 'config'), undefined, (p) => readdirSync(p));
    const problems = lxcConfigProblems(entries, { apparmor: this.apparmor(), containerDir: dir });
    const unsupported = (reason: string, hint: string, details: Record<string, unknown>) =>
      new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `LXC container ${id} cannot be checkpointed: ${reason}`, { hint, details: { id, config: join(dir, 'config'), ...details } });
    if (problems.length > 0) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).map((p) => p.key).join(', ')})` : '';
      throw unsupported(`${problems[0]!.reason}${more}`, problems[0]!.hint, { problems });
    }
    const holder = this.containers.terminalHolder(container);
    if (holder) {
      throw unsupported(
        `process ${holder.pid} in it holds a terminal (fd ${holder.fd} -> ${holder.target})`,
        "Run the container's processes with stdio on /dev/null or pipes (no console, no pty sessions) and set `lxc.console.path = none`.",
        { ...holder },
      );
    }
  }

  checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointContainer(this.dumpHooks(), ref, options);
  }

  restore(options: RestoreOptions): Promise<RestoreResult> {
    return restoreContainer(this.restoreHooks(), options);
  }

  private dumpHooks(): DumpHooks<'lxc', Located> {
    return {
      runtime: 'lxc',
      label: 'LXC',
      checkpointTimeoutMs: this.options.checkpointTimeoutMs,
      toolHint: LXC_TOOL_HINT,
      check: (ref, options) => {
        lxcNames.ref(ref);
        if (options.preDump || options.parentImage) {
          throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'the LXC adapter does not do incremental (pre-dump) checkpoints yet', { hint: 'Use stop-and-copy or post-copy.' });
        }
      },
      find: async (ref) => {
        const where = this.containers.locate(ref.id);
        return { before: await this.containers.describe(where), target: where };
      },
      preflight: ({ before }) => this.preflight(before),
      recordExtras: ({ target }) => {
        const fenced = this.fenced.get(target.name);
        const configText = readFileSync(join(target.dir, 'config'), 'utf8');
        return { lxcpath: target.lxcpath, containerDir: target.dir, configText, ...(fenced?.length ? { raiseLinks: fenced } : {}) };
      },
      dump: async ({ target }, { options, imagesDir, workDir, leaveRunning, netnsPath }) => {
        // liblxc names CRIU's log by absolute path in the images dir; the work dir gets CRIU's stats and this file.
        const lazy = options.lazyPages;
        const server = lazy ? { lazyPages: { address: lazy.address, port: lazy.port } } : options.pageServer ? { pageServer: options.pageServer } : {};
        const { tcpEstablished, fileLocks, extUnixSk } = options;
        const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), { tcpEstablished, fileLocks, extUnixSk, workDir, ...server });
        // CRIU kills the tree itself at the end of a lazy dump: liblxc must not stop it (-s) as well.
        const args = ['-P', target.lxcpath, '-n', target.name, '-D', imagesDir, ...(leaveRunning || lazy ? [] : ['-s'])];
        // A lazy dump is ready when its page server listens (liblxc gives CRIU no status fd): watch the socket in the
        // tool's network namespace.
        let toolPid: number | undefined;
        const watch = lazy ? watchListening(lazy.port, () => toolPid, lazy.onReady) : undefined;
        try {
          return await this.cli.run('lxc-checkpoint', args, {
            timeoutMs: this.options.checkpointTimeoutMs,
            signal: options.signal,
            env: confPath ? { CRIU_CONFIG_FILE: confPath } : {},
            ...(netnsPath ? { netnsPath } : {}),
            onSpawn: (pid) => (toolPid = pid),
          });
        } finally {
          watch?.stop();
        }
      },
      dumpLog: (plan) => join(plan.imagesDir, 'dump.log'),
      // A CRIU killed at the deadline may leave the cgroup frozen; a container that was running runs again.
      recover: async ({ before }, outcome) => {
        if ((outcome.timedOut || outcome.aborted) && before.state === 'running' && before.freezerPath) thawQuietly(before.freezerPath);
      },
      // liblxc names CRIU in its messages when CRIU ran and failed (it may die before it writes a log: a signal).
      criuNamed: (outcome) => /criu/i.test(outcome.errorText),
      inspect: (id) => this.inspect(id),
    };
  }

  private restoreHooks(): RestoreHooks<'lxc', Located> {
    return {
      runtime: 'lxc',
      label: 'LXC',
      restoreTimeoutMs: this.options.restoreTimeoutMs,
      toolHint: LXC_TOOL_HINT,
      refuse: (options) => {
        if (!options.readdress || Object.keys(options.readdress).length === 0) return;
        throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'the LXC adapter cannot give a restored container new addresses', {
          hint: 'Clone LXC containers without --address, or give them addresses inside the container after the restore.',
        });
      },
      assertName: (name) => lxcNames.name(name),
      prepare: async ({ name, record, options }, revert) => {
        const placement = { name, record, bundle: options.bundle, lxcPaths: this.options.lxcPaths, stateOf: async (w: Located) => (await this.containers.lxcInfo(w)).state };
        const where = await placeContainerDir(placement, revert);
        revert.add(() => this.stopQuietly(where));
        return where;
      },
      run: (where, { imagesDir, workDir, criu, options }) => {
        const confPath = writeLxcCriuConfig(join(workDir, CRIU_CONF), { ...criu, workDir, lazyPages: options.lazyPages === true });
        const logFile = join(workDir, 'lxc-restore.log');
        rmSync(logFile, { force: true });
        return this.cli.run('lxc-checkpoint', ['-r', '-P', where.lxcpath, '-n', where.name, '-D', imagesDir], {
          logFile,
          timeoutMs: this.options.restoreTimeoutMs,
          signal: options.signal,
          env: confPath ? { CRIU_CONFIG_FILE: confPath } : {},
        });
      },
      restoreLog: (_, plan) => join(plan.imagesDir, 'restore.log'),
      criuNamed: (outcome) => /criu/i.test(outcome.errorText),
      finish: async (where, { record, imagesDir, workDir }) => {
        // CRIU restores the links as they were dumped: a move fenced them. They come up now that the restored
        // sockets exist, and before the container is thawed.
        if (record?.raiseLinks?.length) {
          const { pid } = await this.containers.lxcInfo(where);
          for (const ifname of record.raiseLinks) await ipIn(this.tools, `/proc/${pid}/ns/net`, ['link', 'set', ifname, 'up']);
        }
        const restored = await this.containers.describe(where, { thaw: true });
        if (restored.state === 'running') return restored;
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `LXC restored ${where.name} but it is ${restored.state}`, {
          hint: `Read ${join(workDir, 'lxc-restore.log')} and ${join(imagesDir, 'restore.log')}.`,
        });
      },
    };
  }

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

  /** Fences the container for a move (lxc-fence.ts: host ends off their bridge, else its links down). */
  async fenceNetwork(id: string): Promise<Fence> {
    const info = await this.inspect(id);
    const record = await lxcFence(this.tools, info, () => this.containers.hostLinks(this.containers.locate(id)));
    if (record.kind === 'links-down') this.fenced.set(id, record.interfaces);
    return asFence(record, (r) => this.unfenceNetwork(r));
  }

  async unfenceNetwork(record: FenceRecord): Promise<void> {
    this.fenced.delete(record.id);
    await liftFence(this.tools, record);
  }

  manualCommands(name: string): { thaw: string; remove: string } {
    // lxc-unfreeze does not thaw the v1 freezer on hybrid cgroup hosts (measured); writing it through liblxc does.
    const where = (() => {
      try {
        return this.containers.locate(name);
      } catch {
        return undefined;
      }
    })();
    const p = where && where.lxcpath !== DEFAULT_LXC_PATH ? `-P ${where.lxcpath} ` : '';
    return { thaw: `lxc-cgroup ${p}-n ${name} freezer.state THAWED`, remove: `lxc-destroy ${p}-f -n ${name}` };
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    const info = await this.inspect(id);
    if (info.pid === undefined) return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, `/proc/${info.pid}/ns/net`);
  }

  /** Stops the container (thawed first: a frozen task cannot die) and destroys it; a missing one is no error. */
  async remove(id: string): Promise<void> {
    lxcNames.name(id);
    let where: Located;
    try {
      where = this.containers.locate(id);
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return;
      throw err;
    }
    await this.stop(id);
    await this.containers.lxc('lxc-destroy', ['-P', where.lxcpath, '-n', where.name], `destroy ${where.name}`);
  }

  /** Stops a running container (`lxc-stop -k`) and leaves it defined; for tests and tools. */
  async stop(id: string): Promise<void> {
    const where = this.containers.locate(id);
    const info = await this.containers.describe(where).catch(() => undefined);
    if (!info || info.state === 'stopped') return;
    if (info.freezerPath) thawQuietly(info.freezerPath);
    await this.containers.lxc('lxc-stop', ['-P', where.lxcpath, '-n', id, '-k'], `stop ${id}`);
  }

  /** Stops what a failed restore may have started. */
  private async stopQuietly(where: Located): Promise<void> {
    await this.stop(where.name).catch(() => undefined);
  }

  private freezerOf(info: ContainerInfo): Freezer {
    if (info.freezerPath) return Freezer.at(info.freezerPath);
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `LXC container ${info.ref.id} is ${info.state}: nothing to freeze or thaw`, {
      hint: `Start it first (\`lxc-start -n ${info.ref.id}\`).`,
    });
  }

  private apparmor(): boolean {
    if (this.options.apparmor !== undefined) return this.options.apparmor;
    try {
      return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
    } catch {
      return false;
    }
  }
}

function thawQuietly(freezerPath: string): void {
  try {
    Freezer.at(freezerPath).thaw();
  } catch {
    /* gone */
  }
}
