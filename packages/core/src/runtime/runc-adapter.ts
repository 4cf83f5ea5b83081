/**
 * The runc adapter: ferry's reference runtime adapter, the file a new runtime copies. An adapter is its options
 * (resolved once), a way to find containers through the runtime's own tool, a preflight that refuses what CRIU cannot
 * dump before anything is frozen, the hooks of the one checkpoint and restore pipeline (checkpoint-pipeline.ts,
 * restore-pipeline.ts), and the lifecycle calls a migration holds a container with (pause, resume, fence, remove).
 *
 * runc drives CRIU itself: `runc restore` needs runc's own metadata (descriptors.json, the external-mount map, the
 * netns inherit-fd) and must own the restored container's state, or `runc state/kill/delete` would not know it. So
 * CRIU's notify channel stays runc's (onNotify is refused). What runc does not keep goes into the record (config.json,
 * a joined network namespace's interfaces); what the adapter makes for a restored container is noted before it is
 * made and undone with it (runc-restore.ts). A paused container stays frozen across `checkpoint --leave-running`:
 * that is the migration's hold (pause, checkpoint with leaveRunning, then remove to commit or resume to roll back).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { assertCheckpointable, nameRule } from './adapter-common';
import { DEFAULT_CHECKPOINT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_RESTORE_TIMEOUT_MS, DEFAULT_SEARCH_PATH, resolveAdapterOptions, tool } from './adapter-options';
import { checkpointContainer, type DumpHooks, type PipelineRuntime } from './checkpoint-pipeline';
import { asFence, fenceLinks, liftFence, type Fence, type FenceRecord } from './network-fence';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import { RuncCli, runcCheckpoint, runcRestoreArgs, type RuncOutcome } from './runc-cli';
import { netnsTies, readdressed, readNetnsInterfaces, type NetnsTools, type NetnsUplink } from './runc-netns';
import { prepareRuncNetwork, raiseOwnedUplink, raisePreparedNetns } from './runc-prepared-network';
import { RUNC_TOOL_HINT, RuncContainers } from './runc-containers';
import { cleanupKilledRestore, OwnedStore, prepareRuncRestore, type RuncRestoreDeps, type RuncRestorePrep } from './runc-restore';
import { networkNamespaceOf } from './runc-state';
import { readStdioProblem } from './stdio-targets';
import { RuncTrafficHolds } from './runc-traffic-hold';
import type { CheckpointOptions, CheckpointResult, KnownContainer, NetworkRelease, NetworkSpec, PrepareNetworkResult, RaiseNetworkResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability } from './runtime-adapter';

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
  /**
   * restore({ holdNetwork }) holds a re-created namespace's packets (queued, delivered at releaseNetwork()) rather
   * than keeping its uplink down until then; false is the old way (benchmarks compare the two).
   */
  packetHold: boolean;
  /**
   * With packetHold: a prepared namespace's bridge ends come up behind the hold when the source is fenced
   * (raisePreparedNetwork), so what clients send during the whole freeze is queued, not lost; false raises them only
   * at the restore (the benchmark's comparison).
   */
  raiseAtFence: boolean;
  checkpointTimeoutMs: number;
  restoreTimeoutMs: number;
  commandTimeoutMs: number;
}

export const DEFAULT_RUNC_STATE_DIR = '/run/ferry/runc';
export const DEFAULT_NETNS_PREFIX = 'ferry-ct-';

/** The runc adapter's options: defaults filled in, frozen; unknown keys and bad deadlines are ERR_PRECHECK_BAD_INPUT. */
export function resolveRuncAdapterOptions(input: Partial<RuncAdapterOptions> = {}): Readonly<RuncAdapterOptions> {
  return resolveAdapterOptions('runc', input, {
    runcPath: tool('runc'),
    runcRoot: undefined,
    stateDir: DEFAULT_RUNC_STATE_DIR,
    ipPath: tool('ip'),
    nsenterPath: tool('nsenter'),
    umountPath: tool('umount'),
    searchPath: DEFAULT_SEARCH_PATH,
    netnsPrefix: DEFAULT_NETNS_PREFIX,
    netnsUplink: undefined,
    packetHold: true,
    raiseAtFence: true,
    checkpointTimeoutMs: DEFAULT_CHECKPOINT_TIMEOUT_MS,
    restoreTimeoutMs: DEFAULT_RESTORE_TIMEOUT_MS,
    commandTimeoutMs: DEFAULT_COMMAND_TIMEOUT_MS,
  });
}

/** runc's container ids: [\w+-.]; ferry also refuses a leading '-' so an id can never read as a flag. */
const names = nameRule('runc', 'runc', /^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/, 'runc names use letters, digits and _ + - . and do not start with - . or +.');

export class RuncAdapter implements RuntimeAdapter {
  readonly name = 'runc' as const;
  readonly features = { lazyPages: true, preDump: true, relocatablePaths: true } as const;
  readonly options: Readonly<RuncAdapterOptions>;
  private readonly cli: RuncCli;
  private readonly tools: NetnsTools;
  private readonly owned: OwnedStore;
  private readonly containers: RuncContainers;
  private readonly restoreDeps: RuncRestoreDeps;
  private readonly holds: RuncTrafficHolds;
  private readonly pipeline: PipelineRuntime<'runc'>;

  constructor(options: Partial<RuncAdapterOptions> = {}) {
    this.options = resolveRuncAdapterOptions(options);
    const { runcPath, runcRoot, nsenterPath, ipPath } = this.options;
    this.cli = new RuncCli({ runcPath, nsenterPath, ...(runcRoot === undefined ? {} : { runcRoot }) });
    this.tools = { ipPath, nsenterPath };
    this.owned = new OwnedStore(this.options.stateDir, this.tools);
    this.containers = new RuncContainers(this.cli, this.tools, this.options.commandTimeoutMs, names.name);
    const { netnsPrefix, netnsUplink: uplink, umountPath } = this.options;
    this.pipeline = { runtime: 'runc', label: 'runc', toolHint: RUNC_TOOL_HINT, timeouts: this.options };
    this.holds = new RuncTrafficHolds(this.owned, this.options.searchPath);
    this.restoreDeps = { tools: this.tools, store: this.owned, containers: this.containers, netnsPrefix, uplink, runcRoot, umountPath, ...(this.options.packetHold ? { holds: this.holds } : {}) };
  }

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

  list(): Promise<ContainerInfo[]> {
    return this.containers.list();
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return this.containers.describe(await this.containers.state(id));
  }

  /** Refuses a console (`process.terminal`) and stdio that is a terminal, a host file or a socket. */
  async preflight(container: ContainerInfo): Promise<void> {
    names.ref(container.ref);
    const { id } = container.ref;
    assertCheckpointable(container, 'runc', `runc start ${id}`);
    const unsupported = (reason: string, hint: string) =>
      new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `runc container ${id} cannot be checkpointed: ${reason}`, { hint, details: { id, bundle: container.bundle } });
    if (this.containers.bundleConfig(container).process?.terminal === true) {
      throw unsupported(
        'it has a terminal (process.terminal is true in config.json)',
        'Run it without a terminal: "terminal": false, stdio on /dev/null or pipes (`runc run -d ... </dev/null >/dev/null 2>&1`).',
      );
    }
    if (container.pid === undefined) return;
    // A file on one of the container's own mounts (nginx's error log) is the container's: stdio-targets.ts.
    const problem = readStdioProblem(container.pid);
    if (problem) throw unsupported(problem, 'Start the container with stdio on /dev/null or pipes; CRIU cannot dump files outside the container.');
  }

  // ------------------------------------------------------------------------------------------------ the pipeline's hooks

  checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointContainer(this.dumpHooks(), ref, options);
  }

  restore(options: RestoreOptions): Promise<RestoreResult> {
    return restoreContainer(this.restoreHooks(), options);
  }

  private dumpHooks(): DumpHooks<'runc', undefined> {
    return {
      ...this.pipeline,
      check: (ref) => names.ref(ref),
      // The container may be frozen already (the migration's hold): its network is read once, for the record. A
      // caller's read of the same running container (a lazy dump in a move) saves a runc process in the freeze.
      find: async (ref, known) => ({ before: { ...(await this.knownOrRead(ref.id, known?.container)) }, target: undefined }),
      preflight: ({ before }) => this.preflight(before),
      // What runc does not dump: config.json and a joined network namespace. Read now; after the dump it may be gone.
      recordExtras: ({ before }, plan) => this.containers.recordOf(before, plan.options.known?.network),
      dump: ({ before }, plan) => runcCheckpoint(this.cli, plan, before.ref.id, this.options.checkpointTimeoutMs),
      dumpLog: (plan) => join(plan.workDir, 'dump.log'),
      // runc resumes the container after a CRIU failure; a CRIU killed at the deadline may leave it frozen.
      recover: async ({ before }, outcome) => {
        if (!(outcome.timedOut || outcome.aborted) || before.state !== 'running') return;
        const now = await this.containers.state(before.ref.id).catch(() => undefined);
        if (now?.status === 'paused' || now?.status === 'pausing') await this.containers.runc(['resume', before.ref.id], `resume ${before.ref.id}`).catch(() => undefined);
      },
      inspect: (id) => this.inspect(id),
    };
  }

  private restoreHooks(): RestoreHooks<'runc', RuncRestorePrep> {
    return {
      ...this.pipeline,
      manualCommands: (name) => this.manualCommands(name),
      assertName: (name) => names.name(name),
      exists: (name) => this.containers.exists(name),
      prepare: (plan, revert) => prepareRuncRestore(plan, this.restoreDeps, revert),
      run: ({ bundle }, plan) => {
        // runc's own messages during `restore -d` (its stdio are /dev/null then).
        const logFile = join(plan.workDir, 'runc-restore.log');
        rmSync(logFile, { force: true });
        return this.cli.run(runcRestoreArgs(plan, bundle), { logFile, timeoutMs: this.options.restoreTimeoutMs, signal: plan.options.signal });
      },
      restoreLog: (_, plan) => join(plan.workDir, 'restore.log'),
      // runc cleans up after a CRIU failure by itself, not after a CRIU killed at the deadline.
      recover: async (prep, plan, outcome) => {
        if (outcome.timedOut || outcome.aborted) await cleanupKilledRestore(plan, prep, this.restoreDeps);
      },
      finish: async ({ afterRestore }, { name, options }) => {
        for (const step of afterRestore) await step();
        // A held copy (a move's) is off the network until its caller releases it, and that caller made the network:
        // it is not read back while clients wait (one process less in the frozen window; the result has no netns). Its
        // state comes from runc's file, not a `runc state` process (25-60 ms under load).
        return this.containers.describe(await this.containers.runningState(name), { netns: options.holdNetwork !== true });
      },
    };
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Freezes the container (`runc pause`, the cgroup freezer). Already paused: nothing to do. */
  async pause(id: string): Promise<void> {
    if ((await this.containers.state(id)).status !== 'paused') await this.containers.runc(['pause', id], `pause ${id}`);
  }

  /** Thaws a paused container (`runc resume`). Already running: nothing to do. */
  async resume(id: string): Promise<void> {
    if ((await this.containers.state(id)).status !== 'running') await this.containers.runc(['resume', id], `resume ${id}`);
  }

  /** Sets the container's interfaces down in its network namespace; a container without its own has nothing to fence. */
  async fenceNetwork(id: string, known?: KnownContainer): Promise<Fence> {
    // Not inspect(): its read of the interfaces is one more process while clients wait. They are the caller's read
    // right before the freeze when it made one of this namespace (a move: refreshNetwork), else fenceLinks reads them.
    const info = await this.knownOrRead(id, known?.container);
    const ns = networkNamespaceOf(this.containers.bundleConfig(info));
    const owner = { runtime: 'runc' as const, id };
    const links = ns?.path !== undefined && info === known?.container && known.network?.nsPath === ns.path ? known.network.interfaces.map((i) => i.ifname) : undefined;
    const record: FenceRecord = ns ? await fenceLinks(this.tools, owner, ns.path ?? `/proc/${info.pid}/ns/net`, links) : { ...owner, kind: 'none' };
    return asFence(record, (r) => this.unfenceNetwork(r));
  }

  /**
   * The container as the caller read it (`known`, a move's read at its start), or as runc describes it now (without
   * its interfaces). Taken only when its network namespace has a path and its bundle and pid are known (they do not
   * change while it runs): a namespace reached through the init's pid is looked up now, since a stale pid could be
   * another process's by now, and its links are not ours to cut. Saves a `runc state` while clients wait.
   */
  private async knownOrRead(id: string, known: ContainerInfo | undefined): Promise<ContainerInfo> {
    if (known?.ref.id === id && known.pid !== undefined && known.bundle !== undefined && known.netns?.path !== undefined) return known;
    return this.containers.describe(await this.containers.state(id), { netns: false });
  }

  unfenceNetwork(record: FenceRecord): Promise<void> {
    return liftFence(this.tools, record);
  }

  /** The network namespace the container's config names (a path), with its interfaces as they are now. */
  async networkOf(id: string): Promise<NetworkSpec | undefined> {
    // Not inspect(): it reads the interfaces too, and they are read once, below.
    const info = await this.containers.describe(await this.containers.state(id), { netns: false });
    const ns = networkNamespaceOf(this.containers.bundleConfig(info));
    if (ns?.path === undefined || info.pid === undefined) return undefined;
    return { nsPath: ns.path, interfaces: await readNetnsInterfaces(this.tools, ns.path) };
  }

  /** See RuntimeAdapter.prepareNetwork (runc-prepared-network.ts). */
  prepareNetwork(name: string, spec: NetworkSpec, readdress?: Readonly<Record<string, string>>): Promise<PrepareNetworkResult> {
    names.name(name);
    return prepareRuncNetwork(name, spec.nsPath, readdressed(spec.interfaces, readdress), this.restoreDeps);
  }

  /** See RuntimeAdapter.raisePreparedNetwork (runc-prepared-network.ts). */
  raisePreparedNetwork(name: string): Promise<RaiseNetworkResult> {
    names.name(name);
    if (!this.options.raiseAtFence) return Promise.resolve({ raised: false, reason: 'raised at the restore (raiseAtFence off)' });
    return raisePreparedNetns(name, this.restoreDeps);
  }

  /** Delivers the packets restore({ holdNetwork }) held, or raises the uplink ends it left down (owned.json names both, for any process). */
  async releaseNetwork(name: string): Promise<NetworkRelease | void> {
    names.name(name);
    const owned = this.owned.read(name);
    const released = await this.holds.release(name, owned);
    const raise = owned && raiseOwnedUplink(owned, this.restoreDeps);
    if (!raise) return released;
    await raise();
    delete owned.heldUplink;
    this.owned.write(name, owned);
    return released;
  }

  manualCommands(name: string): { thaw: string; remove: string } {
    const runc = this.options.runcRoot === undefined ? 'runc' : `runc --root ${this.options.runcRoot}`;
    return { thaw: `${runc} resume ${name}`, remove: `${runc} delete -f ${name}` };
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    const info = await this.inspect(id);
    const ns = networkNamespaceOf(this.containers.bundleConfig(info));
    if (!ns) return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, ns.path ?? `/proc/${info.pid}/ns/net`);
  }

  /** `runc delete --force` (also of a paused container) and what the adapter made for it; a missing one is no error. */
  async remove(id: string): Promise<void> {
    names.name(id);
    if (await this.containers.exists(id)) await this.containers.runc(['delete', '--force', id], `delete ${id}`);
    await this.holds.abort(id);
    await this.owned.release(id);
  }
}
