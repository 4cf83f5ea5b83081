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
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Freezer } from '../freezer/freezer';
import { findExecutable } from '../host/find-executable';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { assertCheckpointable } from './adapter-common';
import { DEFAULT_CHECKPOINT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_RESTORE_TIMEOUT_MS, DEFAULT_SEARCH_PATH, resolveAdapterOptions } from './adapter-options';
import { checkpointContainer, type DumpHooks, type PipelineRuntime } from './checkpoint-pipeline';
import { LxcCli, lxcCheckpoint, lxcRestore } from './lxc-cli';
import { hostHasAppArmor, lxcConfigProblems, readLxcConfig } from './lxc-config';
import { LXC_TOOL_HINT, LxcContainers, lxcNames, thawQuietly, type Located } from './lxc-containers';
import { placeContainerDir } from './lxc-restore';
import { lxcFence } from './lxc-fence';
import { asFence, liftFence, type Fence, type FenceRecord } from './network-fence';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import { netnsTies, type NetnsTools } from './runc-netns';
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
  // lazyRestore: LXC's restore has not been tried with ferry's lazy-pages handler; --lazy-restore may still ask.
  readonly features = { lazyPages: true, preDump: false, lazyRestore: false } as const;
  readonly options: Readonly<LxcAdapterOptions>;
  private readonly cli: LxcCli;
  private readonly tools: NetnsTools;
  private readonly containers: LxcContainers;
  private readonly pipeline: PipelineRuntime<'lxc'>;
  /** Interfaces fenceNetwork() took down, by container: the checkpoint records them for the restore to raise. */
  private readonly fenced = new Map<string, string[]>();

  constructor(options: Partial<LxcAdapterOptions> = {}) {
    this.options = resolveLxcAdapterOptions(options);
    const find = (tool: string) => findExecutable(tool, this.options.searchPath) ?? tool;
    this.cli = new LxcCli(find, this.options.searchPath);
    this.tools = { ipPath: find('ip'), nsenterPath: find('nsenter') };
    this.pipeline = { runtime: 'lxc', label: 'LXC', toolHint: LXC_TOOL_HINT, timeouts: this.options };
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
    assertCheckpointable(container, 'LXC', `lxc-start -n ${id}`);
    const dir = container.bundle ?? this.containers.locate(id).dir;
    const entries = readLxcConfig(join(dir, 'config'), undefined, (p) => readdirSync(p));
    const problems = lxcConfigProblems(entries, { apparmor: this.options.apparmor ?? hostHasAppArmor(), containerDir: dir });
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
      ...this.pipeline,
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
      dump: ({ target }, plan) => lxcCheckpoint(this.cli, target, plan, this.options.checkpointTimeoutMs, { searchPath: this.options.searchPath, nsenterPath: this.tools.nsenterPath }),
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
      ...this.pipeline,
      manualCommands: (name) => this.manualCommands(name),
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
        revert.add(() => this.containers.stop(where).catch(() => undefined));
        return where;
      },
      run: (where, plan) => lxcRestore(this.cli, where, plan, this.options.restoreTimeoutMs),
      restoreLog: (_, plan) => join(plan.imagesDir, 'restore.log'),
      criuNamed: (outcome) => /criu/i.test(outcome.errorText),
      finish: async (where, { record, imagesDir, workDir }) => {
        // CRIU restores the links as they were dumped: a move fenced them. They come up now that the restored
        // sockets exist, and before the container is thawed.
        if (record?.raiseLinks?.length) await this.containers.raiseLinks(where, record.raiseLinks);
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
    const where = this.containers.find(name);
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
    const where = this.containers.find(id);
    if (!where) return;
    await this.containers.stop(where);
    await this.containers.lxc('lxc-destroy', ['-P', where.lxcpath, '-n', where.name], `destroy ${where.name}`);
  }

  /** Stops a running container (`lxc-stop -k`) and leaves it defined; for tests and tools. */
  stop(id: string): Promise<void> {
    return this.containers.stop(this.containers.locate(id));
  }

  private freezerOf(info: ContainerInfo): Freezer {
    if (info.freezerPath) return Freezer.at(info.freezerPath);
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `LXC container ${info.ref.id} is ${info.state}: nothing to freeze or thaw`, {
      hint: `Start it first (\`lxc-start -n ${info.ref.id}\`).`,
    });
  }
}
