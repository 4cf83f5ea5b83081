/**
 * The Docker adapter, shaped like the runc reference adapter (runc-adapter.ts). Containers are found through the
 * daemon (docker-client.ts); a checkpoint is `runc checkpoint` against Docker's own runc state (docker-runc.ts), not
 * Docker's checkpoint API, whose containerd packs and unpacks the images twice (docs/docker.md has the measurements);
 * the images are the ones Docker would have written. Docker must own the restored container, so a restore creates it
 * again from the record and starts it from a checkpoint directory whose pagemaps point at the received images
 * (docker-checkpoint-dir.ts: containerd copies kilobytes, CRIU reads the pages in place). The writable layer travels
 * as a tar next to the images.
 *
 * Consequences: ferry runs on the Docker host itself (DOCKER_HOST must be a unix socket); the daemon needs
 * --experimental to start from a checkpoint; no post-copy (Docker's restore cannot pass --lazy-pages to CRIU, refused
 * up front); established TCP connections only where runc's CRIU configuration file turns on tcp-established, since
 * Docker's restore cannot pass that flag either (criu-runc-config.ts, docs/docker.md).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { assertCheckpointable } from './adapter-common';
import { RUNC_CRIU_CONFIG, runcCriuConfigHasTcpEstablished } from './criu-runc-config';
import { DEFAULT_AVAILABILITY_TIMEOUT_MS, DEFAULT_CHECKPOINT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_RESTORE_TIMEOUT_MS, DEFAULT_SEARCH_PATH, resolveAdapterOptions, tool } from './adapter-options';
import { checkpointContainer, type DumpHooks, type PipelineRuntime } from './checkpoint-pipeline';
import { containerInfoOf, DockerClient, dockerNames, notExperimental } from './docker-client';
import { configProblems, containerStateOf, nameOf, recordedContainer, type DockerInspect } from './docker-config';
import { createForRestore, readDockerRecord, refuseRestoreOptions, startFromCheckpoint, type DockerRestorePrep } from './docker-restore';
import { runcRootOf, saveRootfsChanges } from './docker-runc';
import { asFence, fenceLinks, liftFence, type Fence, type FenceRecord } from './network-fence';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import { RuncCli, runcCheckpoint } from './runc-cli';
import { netnsTies, type NetnsTools } from './runc-netns';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability, RuntimeImages } from './runtime-adapter';

export interface DockerAdapterOptions {
  /** Where dockerd listens: `unix:///PATH` (DOCKER_HOST's form) or a plain path. Default /var/run/docker.sock. */
  dockerHost: string;
  runcPath: string;
  /** Docker's runc state root (EXEC_ROOT/runtime-runc/moby); found from the container's shim when undefined. */
  runcRoot: string | undefined;
  ipPath: string;
  nsenterPath: string;
  tarPath: string;
  /** PATH-style list used to find the tools above (the CLI passes the environment's; core never reads env). */
  searchPath: string;
  /** How long availability() waits for the daemon: `ferry ps` must not hang on a stuck daemon. */
  availabilityTimeoutMs: number;
  /** Deadline of quick API calls (inspect, list, pause, create, remove). */
  commandTimeoutMs: number;
  checkpointTimeoutMs: number;
  /** Deadline of the start from a checkpoint (containerd copies the images, then CRIU restores). */
  restoreTimeoutMs: number;
}

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** The Docker adapter's options: defaults filled in (an empty dockerHost too), frozen. */
export function resolveDockerAdapterOptions(input: Partial<DockerAdapterOptions> = {}): Readonly<DockerAdapterOptions> {
  const defaults = {
    dockerHost: DEFAULT_DOCKER_HOST,
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
  };
  return resolveAdapterOptions('docker', input, defaults, (o) => ({ ...o, dockerHost: o.dockerHost || DEFAULT_DOCKER_HOST }));
}

/** What a dump needs of the container: Docker's view of it, and the runc that runs it. */
interface DockerTarget {
  inspect: DockerInspect;
  runc?: RuncCli;
}

export class DockerAdapter implements RuntimeAdapter {
  readonly name = 'docker' as const;
  /** Docker's restore cannot pass --lazy-pages to CRIU (see the header): no post-copy. */
  readonly features = { lazyPages: false } as const;
  readonly options: Readonly<DockerAdapterOptions>;
  readonly images: RuntimeImages;
  private readonly docker: DockerClient;
  private readonly tools: NetnsTools;
  private readonly pipeline: PipelineRuntime<'docker'>;

  constructor(options: Partial<DockerAdapterOptions> = {}) {
    this.options = resolveDockerAdapterOptions(options);
    this.docker = new DockerClient(this.options.dockerHost, this.options);
    this.tools = { ipPath: this.options.ipPath, nsenterPath: this.options.nsenterPath };
    this.images = this.docker.images();
    this.pipeline = { runtime: 'docker', label: 'docker', toolHint: 'Check the container with `docker ps -a`; `ferry doctor` checks the host.', timeouts: this.options };
  }

  availability(): Promise<RuntimeAvailability> {
    return this.docker.availability();
  }

  list(): Promise<ContainerInfo[]> {
    return this.docker.list();
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return containerInfoOf(await this.docker.inspect(id));
  }

  /** Refuses a stopped container, a terminal, host mounts, shared namespaces and established TCP connections. */
  async preflight(container: ContainerInfo): Promise<void> {
    dockerNames.ref(container.ref);
    const inspect = await this.docker.inspect(container.ref.id);
    const name = nameOf(inspect);
    assertCheckpointable({ ...container, state: containerStateOf(inspect.State) }, 'docker', `docker start ${name}`);
    const problems = configProblems(inspect);
    if (problems.length > 0) {
      const reasons = problems.map((p) => p.reason);
      throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `docker container ${name} cannot be checkpointed: ${reasons.join('; ')}`, { hint: problems[0]!.hint, details: { id: name, reasons } });
    }
    const { establishedTcp } = await this.tiesOf(inspect).catch(() => ({ establishedTcp: 0 }));
    if (establishedTcp > 0 && !runcCriuConfigHasTcpEstablished()) {
      throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `docker container ${name} holds ${establishedTcp} established TCP connection(s), which Docker cannot restore without tcp-established in ${RUNC_CRIU_CONFIG}`, {
        hint: `Docker's restore does not pass --tcp-established to CRIU: add the line \`tcp-established\` to ${RUNC_CRIU_CONFIG} on both hosts (docs/docker.md), or close the connections first (listening sockets are fine).`,
        details: { id: name, establishedTcp, criuConfig: RUNC_CRIU_CONFIG },
      });
    }
  }

  checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointContainer(this.dumpHooks(), ref, options);
  }

  restore(options: RestoreOptions): Promise<RestoreResult> {
    return restoreContainer(this.restoreHooks(), options);
  }

  private dumpHooks(): DumpHooks<'docker', DockerTarget> {
    return {
      ...this.pipeline,
      check: (ref, options) => {
        dockerNames.ref(ref);
        if (!options.lazyPages) return;
        throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be moved with post-copy', {
          hint: "Docker's restore cannot pass --lazy-pages to CRIU; use --strategy stop-and-copy (auto picks it).",
        });
      },
      find: async (ref) => {
        const inspect = await this.docker.inspect(ref.id);
        return { before: containerInfoOf(inspect), target: { inspect } };
      },
      preflight: async ({ before, target }, options) => {
        await this.preflight(before);
        const runcRoot = runcRootOf(target.inspect, this.options.runcRoot);
        target.runc = new RuncCli({ runcPath: this.options.runcPath, runcRoot, nsenterPath: this.options.nsenterPath });
        // The dump ends the container; a daemon without --experimental could not start it again from the images.
        if (!(options.leaveRunning || options.preDump) && !(await this.docker.daemonInfo()).experimental) throw notExperimental(`checkpoint of ${before.ref.id} without --leave-running`);
      },
      recordExtras: ({ target }) => ({ docker: recordedContainer(target.inspect) }),
      // The container is frozen from before the writable layer is saved to the end of the dump, so that the layer is the
      // one CRIU's images refer to (a migration has paused it already); one that was running runs again afterwards.
      hold: {
        pause: async ({ before, target }) => void (await this.docker.call(`pause ${before.ref.id}`, (d) => d.getContainer(target.inspect.Id).pause(), before.ref.id)),
        thaw: async ({ before, target }) => void (await this.docker.call(`unpause ${before.ref.id}`, (d) => d.getContainer(target.inspect.Id).unpause(), before.ref.id)),
      },
      dump: async ({ target }, plan, record) => {
        record.docker.rootfsChanges = await saveRootfsChanges(this.docker, target.inspect, target.runc!, plan.imagesDir, this.options);
        return runcCheckpoint(target.runc!, plan, target.inspect.Id, this.options.checkpointTimeoutMs);
      },
      dumpLog: (plan) => join(plan.workDir, 'dump.log'),
      // CRIU ended the container's tasks when not leaveRunning; Docker sees an exited container. Removed like runc's.
      afterDump: async ({ target }, plan) => {
        if (!plan.leaveRunning) await this.remove(target.inspect.Id).catch(() => undefined);
      },
      inspect: (id) => this.inspect(id),
    };
  }

  private restoreHooks(): RestoreHooks<'docker', DockerRestorePrep> {
    return {
      ...this.pipeline,
      manualCommands: (name) => this.manualCommands(name),
      refuse: refuseRestoreOptions,
      readRecord: readDockerRecord,
      assertName: (name) => dockerNames.name(name),
      exists: (name) => this.docker.exists(name),
      prepare: (plan, revert) => createForRestore(this.docker, plan, revert, this.options.restoreTimeoutMs),
      run: (prep, plan) => startFromCheckpoint(this.docker, prep, plan, this.options.restoreTimeoutMs),
      restoreLog: ({ root }) => join(root, 'containerd'),
      finish: async ({ id, checkpointDir, root }, { name }) => {
        rmSync(checkpointDir, { recursive: true, force: true }); // restored: Docker keeps no use for it
        const container = await this.inspect(id);
        if (container.state === 'running') return container;
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `docker restored ${name} but it is ${container.state}`, {
          hint: `Look at \`docker logs ${name}\` and the CRIU restore log under ${root}/containerd.`,
        });
      },
    };
  }

  /** `docker pause` (the cgroup freezer, through containerd and runc). Already paused: nothing to do. */
  async pause(id: string): Promise<void> {
    const inspect = await this.docker.inspect(id);
    if (!inspect.State.Paused) await this.docker.call(`pause ${id}`, (d) => d.getContainer(inspect.Id).pause(), id);
  }

  async resume(id: string): Promise<void> {
    const inspect = await this.docker.inspect(id);
    if (inspect.State.Paused) await this.docker.call(`unpause ${id}`, (d) => d.getContainer(inspect.Id).unpause(), id);
  }

  /** `docker rm -f` (also of a paused container). A container Docker does not know is not an error. */
  async remove(id: string): Promise<void> {
    await this.docker.call(`remove ${id}`, (d) => d.getContainer(id).remove({ force: true }), id).catch((err: unknown) => {
      if (!isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) throw err;
    });
  }

  /** Sets the container's interfaces (not lo) down; a container with `--network none` has nothing to fence. */
  async fenceNetwork(id: string): Promise<Fence> {
    const { State } = await this.docker.inspect(id);
    const owner = { runtime: 'docker' as const, id };
    const record: FenceRecord = State.Pid ? await fenceLinks(this.tools, owner, `/proc/${State.Pid}/ns/net`) : { ...owner, kind: 'none' };
    return asFence(record, (r) => this.unfenceNetwork(r));
  }

  unfenceNetwork(record: FenceRecord): Promise<void> {
    return liftFence(this.tools, record);
  }

  manualCommands(name: string): { thaw: string; remove: string } {
    return { thaw: `docker unpause ${name}`, remove: `docker rm -f ${name}` };
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    return this.tiesOf(await this.docker.inspect(id));
  }

  private async tiesOf(inspect: DockerInspect): Promise<{ addresses: string[]; establishedTcp: number }> {
    const pid = inspect.State.Pid;
    if (!pid || inspect.HostConfig?.NetworkMode === 'host') return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, `/proc/${pid}/ns/net`);
  }
}
