/**
 * The Podman adapter, shaped like the Docker one (docker-adapter.ts). Containers are found through Podman's CLI
 * (podman-cli.ts); a checkpoint is `runc checkpoint` against the runc state Podman's conmon created (runc's default
 * root), not `podman container checkpoint`, which refuses a paused container (the migration's hold) and cannot
 * stream pages to a page server. The root filesystem goes along as a tar beside the images. Podman must own the
 * restored container, so a restore packs the images into a checkpoint archive and imports it (podman-restore.ts).
 *
 * Consequences: containers must run under runc (`--runtime runc`, checked); no post-copy and so no hash-pre-copy
 * (Podman's restore cannot pass --lazy-pages), refused up front; no CRIU pre-dump (Podman cannot restore a chain);
 * established TCP connections are kept (Podman's restore passes --tcp-established itself).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packRootfs } from '../archive/archive-rootfs';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { assertCheckpointable, nameRule } from './adapter-common';
import { DEFAULT_AVAILABILITY_TIMEOUT_MS, DEFAULT_CHECKPOINT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_RESTORE_TIMEOUT_MS, DEFAULT_SEARCH_PATH, resolveAdapterOptions, tool } from './adapter-options';
import { checkpointContainer, type DumpHooks, type PipelineRuntime } from './checkpoint-pipeline';
import { asFence, fenceLinks, liftFence, type Fence, type FenceRecord } from './network-fence';
import { containerInfoOfPodman, PodmanCli, parsePodmanPs, type PodmanInspect } from './podman-cli';
import { podmanImages } from './podman-images';
import { podmanImport, readPodmanRecord, refusePodmanRestoreOptions, PODMAN_ROOTFS_TAR, writeImportArchive, type PodmanRestorePrep } from './podman-restore';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import { RuncCli, runcCheckpoint } from './runc-cli';
import { netnsTies, type NetnsTools } from './runc-netns';
import type { OciConfig } from './runc-state';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability, RuntimeImages } from './runtime-adapter';

export interface PodmanAdapterOptions {
  podmanPath: string;
  /** Global podman flags (a private storage: --root, --runroot, --storage-driver, --cgroup-manager, --tmpdir). */
  podmanArgs: readonly string[];
  /** Environment of podman (default: inherited; podman reads CONTAINERS_CONF and CONTAINERS_STORAGE_CONF from it). */
  env: NodeJS.ProcessEnv | undefined;
  runcPath: string;
  /** The runc state root of Podman's containers; runc's default (/run/runc, Podman's too) when undefined. */
  runcRoot: string | undefined;
  ipPath: string;
  nsenterPath: string;
  tarPath: string;
  searchPath: string;
  availabilityTimeoutMs: number;
  commandTimeoutMs: number;
  checkpointTimeoutMs: number;
  restoreTimeoutMs: number;
}

export function resolvePodmanAdapterOptions(input: Partial<PodmanAdapterOptions> = {}): Readonly<PodmanAdapterOptions> {
  return resolveAdapterOptions('podman', input, {
    podmanPath: tool('podman'),
    podmanArgs: [],
    env: undefined,
    runcPath: tool('runc'),
    runcRoot: undefined,
    ipPath: tool('ip'),
    nsenterPath: tool('nsenter'),
    tarPath: tool('tar'),
    searchPath: DEFAULT_SEARCH_PATH,
    availabilityTimeoutMs: DEFAULT_AVAILABILITY_TIMEOUT_MS,
    commandTimeoutMs: DEFAULT_COMMAND_TIMEOUT_MS,
    checkpointTimeoutMs: DEFAULT_CHECKPOINT_TIMEOUT_MS,
    restoreTimeoutMs: DEFAULT_RESTORE_TIMEOUT_MS,
  });
}

/** Podman names: letters, digits, `_.-`, not starting with a dash (Podman's own rule, bounded). */
export const podmanNames = nameRule('podman', 'podman', /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'Podman names start with a letter or digit and hold letters, digits, _ . -.');

interface PodmanTarget {
  inspect: PodmanInspect;
  spec: OciConfig;
}

export class PodmanAdapter implements RuntimeAdapter {
  readonly name = 'podman' as const;
  /** Podman's restore passes neither --lazy-pages nor a parent image to CRIU (see the header). */
  readonly features = { lazyPages: false, preDump: false } as const;
  readonly options: Readonly<PodmanAdapterOptions>;
  readonly images: RuntimeImages;
  private readonly podman: PodmanCli;
  private readonly runc: RuncCli;
  private readonly tools: NetnsTools;
  private readonly pipeline: PipelineRuntime<'podman'>;

  constructor(options: Partial<PodmanAdapterOptions> = {}) {
    this.options = resolvePodmanAdapterOptions(options);
    const o = this.options;
    this.podman = new PodmanCli({ podmanPath: o.podmanPath, podmanArgs: o.podmanArgs, commandTimeoutMs: o.commandTimeoutMs, ...(o.env ? { env: o.env } : {}) });
    this.runc = new RuncCli({ runcPath: o.runcPath, nsenterPath: o.nsenterPath, ...(o.runcRoot ? { runcRoot: o.runcRoot } : {}) });
    this.tools = { ipPath: o.ipPath, nsenterPath: o.nsenterPath };
    this.images = podmanImages(this.podman, o.restoreTimeoutMs);
    this.pipeline = { runtime: 'podman', label: 'podman', toolHint: 'Check the container with `podman ps -a`; `ferry doctor` checks the host.', timeouts: o };
  }

  /** Usable when `podman version` answers within the availability deadline (it reads the storage, so it can hang). */
  async availability(): Promise<RuntimeAvailability> {
    const run = await this.podman.raw(['version', '--format', '{{.Client.Version}}'], this.options.availabilityTimeoutMs).catch((err: Error) => err);
    if (run instanceof Error) return { usable: false, reason: 'podman is not installed' };
    if (run.exitCode !== 0) return { usable: false, reason: run.timedOut ? 'podman did not answer in time' : `podman version failed: ${run.stderr.trim().split('\n').pop() ?? ''}` };
    return { usable: true, version: run.stdout.trim() };
  }

  async list(): Promise<ContainerInfo[]> {
    return parsePodmanPs(await this.podman.call(['ps', '-a', '--format', 'json']));
  }

  async inspect(id: string): Promise<ContainerInfo> {
    podmanNames.name(id);
    return containerInfoOfPodman(await this.podman.inspect(id));
  }

  /** Refuses a stopped container, another OCI runtime than runc, a terminal and bind mounts of host paths. */
  async preflight(container: ContainerInfo): Promise<void> {
    podmanNames.ref(container.ref);
    const inspect = await this.podman.inspect(container.ref.id);
    this.refuseConfig(inspect, container);
  }

  private refuseConfig(inspect: PodmanInspect, container: ContainerInfo): void {
    const name = inspect.Name;
    assertCheckpointable({ ...container, state: containerInfoOfPodman(inspect).state }, 'podman', `podman start ${name}`);
    const reasons: string[] = [];
    if (inspect.OCIRuntime && inspect.OCIRuntime !== 'runc') reasons.push(`it runs under ${inspect.OCIRuntime}, and ferry dumps Podman containers with runc`);
    if (inspect.Config?.Tty) reasons.push('it has a terminal (CRIU cannot restore it without its console)');
    if ((inspect.Mounts ?? []).some((m) => m.Type === 'bind')) reasons.push('it has bind mounts of host paths (they would have to exist on the destination)');
    if (reasons.length === 0) return;
    throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `podman container ${name} cannot be checkpointed: ${reasons.join('; ')}`, {
      hint: 'Run it with `podman run --runtime runc` (containers.conf: runtime = "runc"), without -t and without host bind mounts.',
      details: { id: name, reasons },
    });
  }

  checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointContainer(this.dumpHooks(), ref, options);
  }

  restore(options: RestoreOptions): Promise<RestoreResult> {
    return restoreContainer(this.restoreHooks(), options);
  }

  private dumpHooks(): DumpHooks<'podman', PodmanTarget> {
    return {
      ...this.pipeline,
      check: (ref, options) => {
        podmanNames.ref(ref);
        if (options.lazyPages) {
          throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Podman containers cannot be moved with post-copy', {
            hint: "Podman's restore cannot pass --lazy-pages to CRIU; use --strategy stop-and-copy (auto picks it).",
          });
        }
        if (options.preDump || options.parentImage) {
          throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Podman containers cannot be pre-dumped', { hint: "Podman's restore takes one full checkpoint; use --strategy stop-and-copy." });
        }
      },
      find: async (ref) => {
        const inspect = await this.podman.inspect(ref.id);
        const spec = JSON.parse(readFileSync(inspect.OCIConfigPath ?? '', 'utf8')) as OciConfig;
        return { before: containerInfoOfPodman(inspect), target: { inspect, spec } };
      },
      preflight: async ({ before, target }) => this.refuseConfig(target.inspect, before),
      recordExtras: ({ target }) => ({
        podman: { containerId: target.inspect.Id, imageId: target.inspect.Image, ...(target.inspect.ImageName ? { imageName: target.inspect.ImageName } : {}), spec: target.spec },
      }),
      // Frozen from before the rootfs is packed to the end of the dump, so the tar is the filesystem CRIU's images refer to.
      hold: {
        pause: async ({ before }) => void (await this.podman.call(['pause', '--', before.ref.id], before.ref.id)),
        thaw: async ({ before }) => void (await this.podman.call(['unpause', '--', before.ref.id], before.ref.id)),
      },
      dump: async ({ target }, plan) => {
        const rootfs = target.spec.root?.path;
        if (rootfs) await packRootfs({ tarPath: this.options.tarPath, cpPath: '' }, rootfs, join(plan.imagesDir, PODMAN_ROOTFS_TAR));
        return runcCheckpoint(this.runc, plan, target.inspect.Id, this.options.checkpointTimeoutMs);
      },
      dumpLog: (plan) => join(plan.workDir, 'dump.log'),
      // CRIU ended the tasks when not leaveRunning; Podman sees an exited container, removed like Docker's.
      afterDump: async ({ target }, plan) => {
        if (!plan.leaveRunning) await this.remove(target.inspect.Id).catch(() => undefined);
      },
      inspect: (id) => this.inspect(id),
    };
  }

  private restoreHooks(): RestoreHooks<'podman', PodmanRestorePrep> {
    return {
      ...this.pipeline,
      manualCommands: (name) => this.manualCommands(name),
      refuse: refusePodmanRestoreOptions,
      readRecord: readPodmanRecord,
      assertName: (name) => podmanNames.name(name),
      exists: (name) => this.podman.exists(name),
      prepare: async (plan, revert) => {
        const prep = await writeImportArchive(plan, revert);
        // A podman killed at the deadline may leave the container it created: the undo removes it.
        revert.add(() => this.remove(plan.name).catch(() => undefined));
        return prep;
      },
      run: (prep, plan) => podmanImport(this.podman, prep, plan, this.options.restoreTimeoutMs),
      restoreLog: (_prep, plan) => `the restore.log under Podman's userdata of ${plan.name} (\`podman inspect ${plan.name}\`: StaticDir)`,
      finish: async (prep, { name }) => {
        rmSync(prep.archive, { force: true });
        const container = await this.inspect(name);
        if (container.state === 'running') return container;
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `podman restored ${name} but it is ${container.state}`, { hint: `Look at \`podman logs ${name}\`.` });
      },
    };
  }

  async pause(id: string): Promise<void> {
    if ((await this.podman.inspect(id)).State.Status !== 'paused') await this.podman.call(['pause', '--', id], id);
  }

  async resume(id: string): Promise<void> {
    if ((await this.podman.inspect(id)).State.Status === 'paused') await this.podman.call(['unpause', '--', id], id);
  }

  /** `podman rm -f` (also of a paused container). A container Podman does not know is not an error. */
  async remove(id: string): Promise<void> {
    await this.podman.call(['rm', '--force', '--time', '0', '--', id], id).catch((err: unknown) => {
      if (!isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) throw err;
    });
  }

  async fenceNetwork(id: string): Promise<Fence> {
    const pid = (await this.podman.inspect(id)).State.Pid;
    const owner = { runtime: 'podman' as const, id };
    const record: FenceRecord = pid ? await fenceLinks(this.tools, owner, `/proc/${pid}/ns/net`) : { ...owner, kind: 'none' };
    return asFence(record, (r) => this.unfenceNetwork(r));
  }

  unfenceNetwork(record: FenceRecord): Promise<void> {
    return liftFence(this.tools, record);
  }

  manualCommands(name: string): { thaw: string; remove: string } {
    return { thaw: `podman unpause ${name}`, remove: `podman rm -f ${name}` };
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    const { State, HostConfig } = await this.podman.inspect(id);
    if (!State.Pid || HostConfig?.NetworkMode === 'host') return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, `/proc/${State.Pid}/ns/net`);
  }
}
