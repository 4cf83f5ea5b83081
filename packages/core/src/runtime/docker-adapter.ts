/**
 * The Docker adapter, shaped like the runc reference adapter (runc-adapter.ts): options resolved once, containers
 * found through the daemon (dockerode over its unix socket), configurations CRIU cannot handle refused before
 * anything is frozen, a record next to the images, and every side effect of a failed restore undone.
 *
 * How a checkpoint reaches CRIU, and why not through Docker's own checkpoint API:
 * - Docker's path (`docker checkpoint create`, then `docker start --checkpoint`) has containerd pack the images into
 *   its content store (tar + sha256) and unpack them again, once at checkpoint and once at restore. Measured on the
 *   lab machine with a 256 MiB workload (docs/docker.md): `docker checkpoint create` 4.8 s, `docker start
 *   --checkpoint` 3.6-5.4 s; `runc checkpoint` of the very same container (Docker's runc state root,
 *   EXEC_ROOT/runtime-runc/moby) 0.33 s, and its images restore through `docker start --checkpoint` intact.
 * - So ferry dumps with runc directly against the container's process tree (the runc and CRIU Docker uses, so the
 *   images are the ones Docker would have written: descriptors.json, external mounts, the netns as external) and
 *   hands them to Docker for the restore: Docker must own the restored container (a container restored by runc
 *   directly would be invisible to containerd and Docker), and Docker 20.10 only restores from the container's own
 *   checkpoint directory (DOCKER_ROOT/containers/ID/checkpoints/NAME; it refuses a custom --checkpoint-dir at start).
 * - The restore's copy is avoided too (docker-checkpoint-dir.ts): the checkpoint directory gets every image but the
 *   memory, with pagemaps that say "in the parent" and a `parent` link to the images ferry received, so containerd
 *   copies kilobytes and CRIU reads the pages in place: 0.8 s instead of 5.4 s for the same 256 MiB restore.
 * - The writable layer (`docker diff`) is packed next to the images while the container is frozen and put into the
 *   new container before its restore: a process holding a file of its layer open restores only if the file is there.
 * - Consequences: ferry must run on the Docker host itself (it reads /proc and runc's state; DOCKER_HOST must be a
 *   unix socket); the daemon needs --experimental (Docker 20.10 starts from a checkpoint only then); post-copy is not
 *   offered (Docker's restore cannot pass --lazy-pages to CRIU); neither can it pass --tcp-established, so a
 *   container holding established TCP connections is refused up front.
 *
 * The contract (RuntimeAdapter), as Docker meets it:
 * - checkpoint(): with leaveRunning the container keeps running (or stays paused: the migration's hold); without,
 *   CRIU ends its tasks and the container is removed from Docker once CRIU succeeded. When checkpoint() throws, the
 *   container is as it was before the call.
 * - restore(): creates the container again from the record (same image, same create options, same name unless one
 *   is given) and starts it from the images. When it throws, the container it created is removed and its
 *   checkpoint directory deleted.
 * - A daemon that is not running makes availability() say so quickly; list() then throws ERR_RUNTIME_UNAVAILABLE.
 *
 * Files and fds: dockerode talks HTTP over the socket (no docker CLI, no shell); runc runs with argv arrays.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { readLogExcerpt } from '../criu/criu-log';
import { parseCgroupLayout, type CgroupInfo } from '../host/cgroup-layout';
import { findExecutable } from '../host/find-executable';
import { createImageDir } from '../image/image-dir';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { configProblems, containerStateOf, createOptionsOf, DOCKER_NAME, nameOf, namesContainer, rootfsChangesToCarry, type DockerInspect } from './docker-config';
import { translateDockerError, type TranslateContext } from './docker-errors';
import { writeParentLinkedCheckpoint } from './docker-checkpoint-dir';
import { readDockerRecord, writeDockerRecord, type DockerCheckpointRecord } from './docker-record';
import { RuncCli, runcCheckpointArgs, type RuncOutcome } from './runc-cli';
import { netnsTies, readNetnsInterfaces, type NetnsTools } from './runc-netns';
import { freezerPathOf } from './runc-state';
import type {
  CheckpointOptions,
  CheckpointResult,
  RestoreOptions,
  RestoreResult,
  RuntimeAdapter,
  RuntimeAvailability,
  RuntimeImages,
} from './runtime-adapter';
import { assertImagesDir, checkpointStats, stoppedAfterDump, throwIfAborted } from './adapter-common';

const run = promisify(execFile);

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
const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Docker's exec root by default; its runc keeps state in EXEC_ROOT/runtime-runc/moby. */
const DEFAULT_EXEC_ROOT = '/run/docker';
const RUNC_STATE_SUBDIR = join('runtime-runc', 'moby');
const DUMP_LOG = 'dump.log';
/** The container's writable layer changes, next to the images. */
const ROOTFS_CHANGES_TAR = 'ferry-rootfs-changes.tar';

const OPTION_KEYS: readonly (keyof DockerAdapterOptions)[] = [
  'dockerHost',
  'runcPath',
  'runcRoot',
  'ipPath',
  'nsenterPath',
  'tarPath',
  'searchPath',
  'availabilityTimeoutMs',
  'commandTimeoutMs',
  'checkpointTimeoutMs',
  'restoreTimeoutMs',
];

export function resolveDockerAdapterOptions(input: Partial<DockerAdapterOptions> = {}): Readonly<DockerAdapterOptions> {
  for (const key of Object.keys(input)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `docker adapter: unknown option "${key}"`, { details: { known: OPTION_KEYS } });
    }
  }
  for (const key of ['availabilityTimeoutMs', 'commandTimeoutMs', 'checkpointTimeoutMs', 'restoreTimeoutMs'] as const) {
    const value = input[key];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `docker adapter: ${key} must be a positive number, got ${value}`);
    }
  }
  const searchPath = input.searchPath ?? DEFAULT_SEARCH_PATH;
  const tool = (name: string, given: string | undefined) => given ?? findExecutable(name, searchPath) ?? name;
  return Object.freeze({
    dockerHost: input.dockerHost || DEFAULT_DOCKER_HOST,
    runcPath: tool('runc', input.runcPath),
    runcRoot: input.runcRoot,
    ipPath: tool('ip', input.ipPath),
    nsenterPath: tool('nsenter', input.nsenterPath),
    tarPath: tool('tar', input.tarPath),
    searchPath,
    availabilityTimeoutMs: input.availabilityTimeoutMs ?? 3_000,
    commandTimeoutMs: input.commandTimeoutMs ?? 30_000,
    checkpointTimeoutMs: input.checkpointTimeoutMs ?? 300_000,
    restoreTimeoutMs: input.restoreTimeoutMs ?? 300_000,
  });
}

/**
 * The socket path of a DOCKER_HOST value, or the reason ferry cannot use it: ferry dumps with runc on the Docker host
 * itself, so a daemon behind tcp:// or ssh:// is out of reach.
 */
export function dockerSocketOf(dockerHost: string): { socketPath: string } | { unusable: string } {
  if (dockerHost.startsWith('unix://')) {
    const path = dockerHost.slice('unix://'.length);
    return path.startsWith('/') ? { socketPath: path } : { unusable: `DOCKER_HOST=${dockerHost} is not an absolute unix socket path` };
  }
  if (dockerHost.startsWith('/')) return { socketPath: dockerHost };
  return { unusable: `DOCKER_HOST=${dockerHost}: ferry checkpoints containers on the Docker host itself and needs its unix socket` };
}

export class DockerAdapter implements RuntimeAdapter {
  readonly name = 'docker' as const;
  /** Docker's restore cannot pass --lazy-pages to CRIU (see the header): no post-copy. */
  readonly features = { lazyPages: false } as const;
  readonly options: Readonly<DockerAdapterOptions>;
  readonly images: RuntimeImages;
  private readonly socket: { socketPath: string } | { unusable: string };
  private readonly tools: NetnsTools;
  private clients = new Map<number, Dockerode>();
  private daemon: { root: string; experimental: boolean } | undefined;
  private cgroupInfo: CgroupInfo | undefined;

  constructor(options: Partial<DockerAdapterOptions> = {}) {
    this.options = resolveDockerAdapterOptions(options);
    this.socket = dockerSocketOf(this.options.dockerHost);
    this.tools = { ipPath: this.options.ipPath, nsenterPath: this.options.nsenterPath };
    this.images = {
      imageOf: async (container) => (await this.inspectRaw(container.ref.id)).Image,
      has: (image) => this.hasImage(image),
      save: (image, sink) => this.saveImage(image, sink),
      load: (tar) => this.loadImage(tar),
      remove: (image) => this.removeImage(image),
    };
  }

  // ------------------------------------------------------------------------------------------------ finding

  async availability(): Promise<RuntimeAvailability> {
    if ('unusable' in this.socket) return { usable: false, reason: this.socket.unusable };
    if (!existsSync(this.socket.socketPath)) return { usable: false, reason: `no dockerd socket at ${this.socket.socketPath}` };
    let version: string | undefined;
    try {
      const answer = (await this.client(this.options.availabilityTimeoutMs).version()) as { Version?: string };
      version = answer.Version;
    } catch (err) {
      return { usable: false, reason: translateDockerError(err, this.ctx('version')).message };
    }
    if (process.getuid?.() !== 0) return { usable: false, reason: 'checkpointing Docker containers needs root', ...(version ? { version } : {}) };
    const daemon = await this.daemonInfo().catch(() => undefined);
    if (daemon && !daemon.experimental) return { usable: false, reason: NOT_EXPERIMENTAL, ...(version ? { version } : {}) };
    return version === undefined ? { usable: true } : { usable: true, version };
  }

  async list(): Promise<ContainerInfo[]> {
    this.requireSocket();
    // A quick ping first: `ferry ps` must not wait out a stuck daemon's full command timeout.
    await this.call('ping', (d) => d.ping(), undefined, this.options.availabilityTimeoutMs);
    const summaries = await this.call('list containers', (d) => d.listContainers({ all: true }));
    const infos = await Promise.all(
      summaries.map((s) =>
        this.client()
          .getContainer(s.Id)
          .inspect()
          .then((i) => this.describe(i), () => undefined), // removed meanwhile
      ),
    );
    return infos.filter((i): i is ContainerInfo => i !== undefined);
  }

  async inspect(id: string): Promise<ContainerInfo> {
    return this.describe(await this.inspectRaw(id));
  }

  // ------------------------------------------------------------------------------------------------ preflight

  /**
   * Refuses what CRIU or a restore elsewhere cannot handle, before anything is frozen: a stopped container, a
   * terminal, host bind mounts and volumes, namespaces shared with the host or another container, and established TCP
   * connections (Docker's restore cannot pass --tcp-established to CRIU).
   */
  async preflight(container: ContainerInfo): Promise<void> {
    assertDocker(container.ref);
    const inspect = await this.inspectRaw(container.ref.id);
    const state = containerStateOf(inspect.State);
    const name = nameOf(inspect);
    if (state !== 'running' && state !== 'paused') {
      throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `docker container ${name} is ${state}`, {
        hint: `Start it first (\`docker start ${name}\`); only running or paused containers can be checkpointed.`,
        details: { id: name, state },
      });
    }
    const problems = configProblems(inspect);
    if (problems.length > 0) {
      throw new FerryError(
        'ERR_PRECHECK_UNSUPPORTED_CONFIG',
        `docker container ${name} cannot be checkpointed: ${problems.map((p) => p.reason).join('; ')}`,
        { hint: problems[0]!.hint, details: { id: name, reasons: problems.map((p) => p.reason) } },
      );
    }
    const ties = await this.tiesOf(inspect).catch(() => ({ addresses: [], establishedTcp: 0 }));
    if (ties.establishedTcp > 0) {
      throw new FerryError(
        'ERR_PRECHECK_UNSUPPORTED_CONFIG',
        `docker container ${name} holds ${ties.establishedTcp} established TCP connection(s), which Docker cannot restore`,
        {
          hint: "Docker's restore does not pass --tcp-established to CRIU: close the connections first (listening sockets are fine).",
          details: { id: name, establishedTcp: ties.establishedTcp },
        },
      );
    }
  }

  // ------------------------------------------------------------------------------------------------ checkpoint

  /**
   * Steps: inspect and preflight, find Docker's runc state root for the container, `runc checkpoint` against it,
   * then the record (only after CRIU succeeded, so a directory with a record is complete) and, without leaveRunning,
   * removal of the container CRIU ended.
   */
  async checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    assertDocker(ref);
    if (options.lazyPages) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be moved with post-copy', {
        hint: "Docker's restore cannot pass --lazy-pages to CRIU; use --strategy stop-and-copy (auto picks it).",
      });
    }
    if (options.onNotify) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'the docker adapter cannot pass CRIU notifications (runc keeps them)', {
        hint: 'Hold the container with pause() and checkpoint it with leaveRunning instead.',
      });
    }
    throwIfAborted(options.signal, `checkpoint of ${ref.id}`);
    const inspect = await this.inspectRaw(ref.id);
    const before = this.describe(inspect);
    await this.preflight(before);
    const runcRoot = this.runcRootOf(inspect);
    if (!(options.leaveRunning || options.preDump) && !(await this.daemonInfo()).experimental) {
      // The dump ends the container; this daemon could not start it again from the images.
      throw notExperimental(`checkpoint of ${ref.id} without --leave-running`);
    }

    const imagesDir = createImageDir(resolve(options.imagesDir));
    const workDir = resolve(options.workDir ?? imagesDir);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const leaveRunning = options.leaveRunning === true || options.preDump === true;
    // options.lazyPages was refused above: the same dump as the runc adapter's, against Docker's container id.
    const args = runcCheckpointArgs(imagesDir, workDir, options, inspect.Id);

    const cli = new RuncCli({ runcPath: this.options.runcPath, runcRoot });
    // Frozen from here to the end of the dump, so that the writable layer saved below is the one CRIU's images
    // refer to (a migration has paused it already). A container that was running runs again if anything fails.
    const thaw = async () => {
      if (before.state === 'running') await this.call(`unpause ${ref.id}`, (d) => d.getContainer(inspect.Id).unpause(), ref.id).catch(() => undefined);
    };
    if (before.state === 'running') await this.call(`pause ${ref.id}`, (d) => d.getContainer(inspect.Id).pause(), ref.id);
    let rootfsChanges: NonNullable<DockerCheckpointRecord['docker']['rootfsChanges']>;
    let outcome: RuncOutcome;
    const started = Date.now();
    try {
      rootfsChanges = await this.saveRootfsChanges(inspect, cli, imagesDir);
      outcome = await cli.run(args, { timeoutMs: this.options.checkpointTimeoutMs, signal: options.signal });
    } catch (err) {
      await thaw();
      throw err;
    }
    if (!outcome.ok) {
      await thaw();
      throw criuFailure(ref.id, outcome, join(workDir, DUMP_LOG), started, options.preDump === true);
    }
    if (leaveRunning) await thaw();

    const record: DockerCheckpointRecord = {
      format: 'ferry-container/1',
      runtime: 'docker',
      id: nameOf(inspect),
      docker: { containerId: inspect.Id, imageId: inspect.Image, create: createOptionsOf(inspect) },
      criu: {
        tcpEstablished: options.tcpEstablished === true,
        fileLocks: options.fileLocks === true,
        extUnixSk: options.extUnixSk === true,
        leaveRunning,
      },
      checkpointedAt: new Date().toISOString(),
    };
    if (inspect.Config.Image && !inspect.Config.Image.startsWith('sha256:')) record.docker.imageName = inspect.Config.Image;
    record.docker.rootfsChanges = rootfsChanges;
    writeDockerRecord(imagesDir, record);
    const stats = await checkpointStats(imagesDir, workDir, outcome.durationMs);

    let container: ContainerInfo;
    if (leaveRunning) {
      container = await this.inspect(inspect.Id).catch(() => before);
    } else {
      // CRIU ended the container's tasks; Docker sees an exited container. Removed like runc's: the images are it now.
      await this.remove(inspect.Id).catch(() => undefined);
      container = stoppedAfterDump(before);
    }
    return { container, imagesDir, stats };
  }

  // ------------------------------------------------------------------------------------------------ restore

  /**
   * Steps: read the record, refuse a taken name, check the image is here, create the container with the recorded
   * options, link the images into its checkpoint directory, start it from there. A failure after the create removes
   * the container (and with it its checkpoint directory).
   */
  async restore(options: RestoreOptions): Promise<RestoreResult> {
    throwIfAborted(options.signal, 'restore');
    const imagesDir = resolve(options.imagesDir);
    assertImagesDir(imagesDir);
    if (options.lazyPages) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be restored with lazy pages', {
        hint: 'Use --strategy stop-and-copy.',
      });
    }
    if (options.readdress && Object.keys(options.readdress).length > 0) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be restored with new addresses', {
        hint: 'Docker assigns addresses itself; restore without --address.',
      });
    }
    const record = readDockerRecord(imagesDir);
    const name = options.name ?? record.id;
    assertName(name);
    if (await this.exists(name)) {
      throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `docker already has a container named ${name}`, {
        hint: `Restore under another name, or remove it first (\`docker rm -f ${name}\`).`,
        details: { name },
      });
    }
    const daemon = await this.daemonInfo();
    if (!daemon.experimental) throw notExperimental(`restore of ${name}`);
    const image = await this.imageToCreateFrom(record);
    const root = daemon.root;

    const create = { ...record.docker.create, Image: image, name };
    const created = await this.call(`create ${name}`, (d) => d.createContainer(create), name);
    const checkpointName = `ferry-${randomBytes(6).toString('hex')}`;
    const checkpointDir = join(root, 'containers', created.id, 'checkpoints', checkpointName);
    try {
      const changes = record.docker.rootfsChanges;
      if (changes && changes.files > 0) {
        // Into the created container's filesystem through Docker (it knows where and how its rootfs is mounted).
        const tar = join(imagesDir, changes.tar);
        await this.call(`copy the writable layer into ${name}`, (d) => d.getContainer(created.id).putArchive(createReadStream(tar), { path: '/' }), name, this.options.restoreTimeoutMs);
      }
      await writeParentLinkedCheckpoint(imagesDir, checkpointDir);
      throwIfAborted(options.signal, `restore of ${name}`);
      const started = Date.now();
      await this.call(`start ${name} from its checkpoint`, (d) => d.getContainer(created.id).start(startFromCheckpoint(checkpointName)), name, this.options.restoreTimeoutMs);
      const restoreMs = Date.now() - started;
      rmSync(checkpointDir, { recursive: true, force: true }); // restored: Docker keeps no use for it
      const container = await this.inspect(created.id);
      if (container.state !== 'running') {
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `docker restored ${name} but it is ${container.state}`, {
          hint: `Look at \`docker logs ${name}\` and the CRIU restore log under ${root}/containerd.`,
        });
      }
      return { container, restoreMs };
    } catch (err) {
      await this.call(`remove ${name}`, (d) => d.getContainer(created.id).remove({ force: true }), name).catch(() => undefined);
      rmSync(checkpointDir, { recursive: true, force: true });
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** `docker pause` (the cgroup freezer, through containerd and runc). Already paused: nothing to do. */
  async pause(id: string): Promise<void> {
    const inspect = await this.inspectRaw(id);
    if (inspect.State.Paused) return;
    await this.call(`pause ${id}`, (d) => d.getContainer(inspect.Id).pause(), id);
  }

  async resume(id: string): Promise<void> {
    const inspect = await this.inspectRaw(id);
    if (!inspect.State.Paused) return;
    await this.call(`unpause ${id}`, (d) => d.getContainer(inspect.Id).unpause(), id);
  }

  /** `docker rm -f` (also of a paused container). A container Docker does not know is not an error. */
  async remove(id: string): Promise<void> {
    try {
      await this.call(`remove ${id}`, (d) => d.getContainer(id).remove({ force: true }), id);
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return;
      throw err;
    }
  }

  /**
   * Takes the container's interfaces (not lo) down while it is frozen for a move, for the reason runc-adapter.ts
   * gives; a container with `--network none` has only lo and nothing to fence.
   */
  async fenceNetwork(id: string): Promise<{ unfence(): Promise<void> }> {
    const inspect = await this.inspectRaw(id);
    if (!inspect.State.Pid) return { unfence: async () => undefined };
    const nsPath = `/proc/${inspect.State.Pid}/ns/net`;
    const interfaces = await readNetnsInterfaces(this.tools, nsPath);
    const setLinks = async (state: 'up' | 'down') => {
      for (const iface of interfaces) await this.ipIn(nsPath, ['link', 'set', iface.ifname, state]);
    };
    await setLinks('down');
    return { unfence: () => setLinks('up') };
  }

  async unfenceNetwork(id: string): Promise<void> {
    const inspect = await this.inspectRaw(id);
    if (!inspect.State.Pid) return;
    const nsPath = `/proc/${inspect.State.Pid}/ns/net`;
    for (const iface of await readNetnsInterfaces(this.tools, nsPath)) await this.ipIn(nsPath, ['link', 'set', iface.ifname, 'up']);
  }

  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    return this.tiesOf(await this.inspectRaw(id));
  }

  // ------------------------------------------------------------------------------------------------ writable layer

  /**
   * What the container changed in its own filesystem (`docker diff`), as a tar next to the images: a restore on
   * another host starts from the image alone, and CRIU refuses to restore a process whose open file is missing or
   * has another size. Read from the container's rootfs as runc sees it. Left out: Docker's own bind mounts
   * (/etc/hosts, /etc/hostname, /etc/resolv.conf), mounts (tmpfs contents travel in CRIU's images), /dev, /proc and
   * /sys. Deletions of files that come from the image are listed, not replayed (Docker has no API for it).
   */
  private async saveRootfsChanges(inspect: DockerInspect, cli: RuncCli, imagesDir: string): Promise<NonNullable<DockerCheckpointRecord['docker']['rootfsChanges']>> {
    const changes = ((await this.call(`diff ${nameOf(inspect)}`, (d) => d.getContainer(inspect.Id).changes(), nameOf(inspect))) ?? []) as { Path: string; Kind: number }[];
    const mounts = [...(inspect.Mounts ?? []).map((m) => m.Destination), ...Object.keys((inspect.HostConfig as { Tmpfs?: Record<string, string> }).Tmpfs ?? {})];
    const { carried, deleted } = rootfsChangesToCarry(changes, mounts);
    const result = { tar: ROOTFS_CHANGES_TAR, files: carried.length, deleted };
    if (carried.length === 0) return result;
    const state = await cli.run(['state', inspect.Id], { timeoutMs: this.options.commandTimeoutMs });
    const rootfs = state.ok ? (JSON.parse(state.stdout) as { rootfs?: string }).rootfs : undefined;
    if (!rootfs) throw new FerryError('ERR_RUNTIME_FAILED', `cannot find the root filesystem of docker container ${nameOf(inspect)}`, { hint: 'Check `runc state` of the container.' });
    const list = join(imagesDir, `${ROOTFS_CHANGES_TAR}.list`);
    writeFileSync(list, carried.map((p) => `.${p}`).join('\0'), { mode: 0o600 });
    try {
      await run(this.options.tarPath, ['-C', rootfs, '--no-recursion', '--null', '-T', list, '--numeric-owner', '-cf', join(imagesDir, ROOTFS_CHANGES_TAR)]);
      chmodSync(join(imagesDir, ROOTFS_CHANGES_TAR), 0o600);
    } catch (err) {
      throw new FerryError('ERR_RUNTIME_FAILED', `cannot save the writable layer of docker container ${nameOf(inspect)}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
        hint: 'Check free space in the image directory.',
        cause: err,
      });
    } finally {
      rmSync(list, { force: true });
    }
    return result;
  }

  // ------------------------------------------------------------------------------------------------ images

  private async hasImage(image: string): Promise<boolean> {
    try {
      await this.call(`inspect image ${image}`, (d) => d.getImage(image).inspect(), image);
      return true;
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return false;
      throw err;
    }
  }

  /** `docker save` of the image into `sink` (not ended: the caller owns it). */
  private async saveImage(image: string, sink: Writable): Promise<void> {
    // By a name that points at this very image when there is one: `docker save ID` would lose the tags.
    const inspect = await this.call(`inspect image ${image}`, (d) => d.getImage(image).inspect(), image);
    const tag = inspect.RepoTags?.find((t) => t && !t.endsWith(':<none>'));
    const stream = (await this.call(`save image ${image}`, (d) => d.getImage(tag ?? inspect.Id).get(), image, this.options.restoreTimeoutMs)) as Readable;
    await new Promise<void>((resolvePipe, reject) => {
      stream.once('error', reject);
      sink.once('error', reject);
      stream.once('end', () => resolvePipe());
      stream.pipe(sink, { end: false });
    });
  }

  private async loadImage(tar: Readable): Promise<void> {
    const answer = (await this.call('load image', (d) => d.loadImage(tar, { quiet: true }), undefined, this.options.restoreTimeoutMs)) as Readable;
    // The daemon streams JSON lines; an error in the load arrives as {"error": ...} in that stream.
    const text = await new Promise<string>((resolveText, reject) => {
      let out = '';
      answer.setEncoding('utf8');
      answer.on('data', (c: string) => (out += c));
      answer.once('end', () => resolveText(out));
      answer.once('error', reject);
    });
    const failure = /"error"\s*:\s*"([^"]*)"/.exec(text)?.[1];
    if (failure) throw new FerryError('ERR_RUNTIME_FAILED', `docker load failed: ${failure}`, { hint: 'Check free disk space under the Docker root.' });
  }

  private async removeImage(image: string): Promise<void> {
    try {
      await this.call(`remove image ${image}`, (d) => d.getImage(image).remove(), image);
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return;
      if (isFerryError(err, 'ERR_RUNTIME_FAILED') && /in use|being used|conflict/i.test(err.message)) return;
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------ internals

  private requireSocket(): string {
    if ('unusable' in this.socket) {
      throw new FerryError('ERR_RUNTIME_UNAVAILABLE', this.socket.unusable, { hint: 'Point DOCKER_HOST at the local daemon: unix:///var/run/docker.sock.' });
    }
    return this.socket.socketPath;
  }

  private client(timeoutMs = this.options.commandTimeoutMs): Dockerode {
    const socketPath = this.requireSocket();
    let client = this.clients.get(timeoutMs);
    if (!client) {
      client = new Dockerode({ socketPath, timeout: timeoutMs });
      this.clients.set(timeoutMs, client);
    }
    return client;
  }

  private ctx(what: string, subject?: string): TranslateContext {
    const socket = 'socketPath' in this.socket ? this.socket.socketPath : this.options.dockerHost;
    return subject === undefined ? { what, socket } : { what, socket, subject };
  }

  /** One API call with ferry's errors. */
  private async call<T>(what: string, body: (docker: Dockerode) => Promise<T>, subject?: string, timeoutMs?: number): Promise<T> {
    try {
      return await body(this.client(timeoutMs));
    } catch (err) {
      throw translateDockerError(err, this.ctx(what, subject));
    }
  }

  private async inspectRaw(id: string): Promise<DockerInspect> {
    assertName(id);
    const inspect = await this.call(`inspect ${id}`, (d) => d.getContainer(id).inspect(), id);
    if (!namesContainer(inspect, id)) {
      // Docker matched an id prefix: ferry only takes names and ids of 12+ characters.
      throw new FerryError('ERR_RUNTIME_NOT_FOUND', `docker has no container named ${id}`, {
        hint: 'Run `ferry ps` to see the containers ferry can find.',
        details: { id },
      });
    }
    return inspect;
  }

  private async exists(id: string): Promise<boolean> {
    try {
      await this.inspectRaw(id);
      return true;
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return false;
      throw err;
    }
  }

  private describe(inspect: DockerInspect): ContainerInfo {
    const state = containerStateOf(inspect.State);
    const info: ContainerInfo = { ref: { runtime: 'docker', id: nameOf(inspect) }, state, createdAt: inspect.Created };
    const pid = inspect.State.Pid;
    if (pid > 0 && (state === 'running' || state === 'paused')) {
      info.pid = pid;
      try {
        const freezerPath = freezerPathOf(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), this.cgroups());
        if (freezerPath) info.freezerPath = freezerPath;
      } catch {
        /* exited meanwhile, or the daemon runs elsewhere */
      }
    }
    return info;
  }

  private async tiesOf(inspect: DockerInspect): Promise<{ addresses: string[]; establishedTcp: number }> {
    const pid = inspect.State.Pid;
    if (!pid) return { addresses: [], establishedTcp: 0 };
    if (inspect.HostConfig?.NetworkMode === 'host') return { addresses: [], establishedTcp: 0 };
    return netnsTies(this.tools, `/proc/${pid}/ns/net`);
  }

  private async ipIn(nsPath: string, args: string[]): Promise<void> {
    try {
      await run(this.options.nsenterPath, [`--net=${nsPath}`, this.options.ipPath, ...args]);
    } catch (err) {
      throw new FerryError('ERR_RUNTIME_FAILED', `ip ${args.join(' ')} in ${nsPath} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
        hint: 'Check the container network namespace with `nsenter --net=/proc/PID/ns/net ip link`.',
        cause: err,
      });
    }
  }

  /**
   * Docker's runc state root for this container: the option when given, else derived from the containerd shim that
   * parents the container's init (`-address EXEC_ROOT/containerd/containerd.sock`), else Docker's default. The one
   * chosen must hold the container's state.json: runc would otherwise act on nothing (or on another daemon's).
   */
  private runcRootOf(inspect: DockerInspect): string {
    const candidates: string[] = [];
    if (this.options.runcRoot) candidates.push(this.options.runcRoot);
    const execRoot = execRootOfShim(inspect.State.Pid);
    if (execRoot) candidates.push(join(execRoot, RUNC_STATE_SUBDIR));
    candidates.push(join(DEFAULT_EXEC_ROOT, RUNC_STATE_SUBDIR));
    const found = candidates.find((root) => existsSync(join(root, inspect.Id, 'state.json')));
    if (!found) {
      throw new FerryError('ERR_RUNTIME_FAILED', `cannot find runc's state of docker container ${nameOf(inspect)} (looked in ${candidates.join(', ')})`, {
        hint: "ferry must run on the Docker host itself; pass the daemon's runc root (EXEC_ROOT/runtime-runc/moby) if it is elsewhere.",
        details: { candidates },
      });
    }
    return found;
  }

  private async imageToCreateFrom(record: DockerCheckpointRecord): Promise<string> {
    const { imageId, imageName } = record.docker;
    if (!(await this.hasImage(imageId))) {
      throw new FerryError('ERR_IMAGE_NOT_FOUND', `docker has no image ${imageName ?? imageId} (${imageId}) to restore ${record.id} from`, {
        hint: `Load it first (\`docker save ${imageName ?? imageId}\` on the source, \`docker load\` here); \`ferry migrate\` does this by itself.`,
        details: { imageId, imageName },
      });
    }
    // The name when it still points at the same image (so `docker ps` shows it), else the id.
    if (imageName) {
      const named = await this.call(`inspect image ${imageName}`, (d) => d.getImage(imageName).inspect(), imageName).catch(() => undefined);
      if (named?.Id === imageId) return imageName;
    }
    return imageId;
  }

  /** Where the daemon keeps containers, and whether it restores from checkpoints at all (only with --experimental). */
  private async daemonInfo(): Promise<{ root: string; experimental: boolean }> {
    if (this.daemon === undefined) {
      const info = (await this.call('info', (d) => d.info(), undefined, this.options.availabilityTimeoutMs)) as { DockerRootDir?: string; ExperimentalBuild?: boolean };
      if (!info.DockerRootDir) throw new FerryError('ERR_RUNTIME_FAILED', 'docker info does not say where the Docker root is');
      this.daemon = { root: info.DockerRootDir, experimental: info.ExperimentalBuild === true };
    }
    return this.daemon;
  }

  private cgroups(): CgroupInfo {
    this.cgroupInfo ??= parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    return this.cgroupInfo;
  }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * POST /containers/ID/start?checkpoint=NAME with an empty body: docker-modem sends a POST's options as the body too
 * unless they are split into _query and _body, and Docker >= 1.24 refuses a start with a body.
 */
function startFromCheckpoint(checkpoint: string): Dockerode.ContainerStartOptions {
  return { _query: { checkpoint }, _body: {} } as Dockerode.ContainerStartOptions;
}

/** EXEC_ROOT of the daemon whose shim parents `pid`, from the shim's `-address` argument. */
function execRootOfShim(pid: number): string | undefined {
  if (!pid) return undefined;
  try {
    const ppid = /^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    if (!ppid) return undefined;
    const argv = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    const at = argv.indexOf('-address');
    const address = at >= 0 ? argv[at + 1] : undefined;
    // EXEC_ROOT/containerd/containerd.sock
    return address?.endsWith('/containerd.sock') ? dirname(dirname(address)) : undefined;
  } catch {
    return undefined;
  }
}


function criuFailure(id: string, outcome: RuncOutcome, logPath: string, started: number, preDump: boolean): FerryError {
  let criuRan = false;
  try {
    criuRan = statSync(logPath).mtimeMs >= started - 1000;
  } catch {
    /* no log: runc failed before CRIU ran */
  }
  const excerpt = criuRan ? readLogExcerpt(logPath) : undefined;
  const lines = excerpt?.lines.length ? `\n${excerpt.lines.map((l) => `  ${l}`).join('\n')}` : '';
  const details = { id, argv: outcome.args, exitCode: outcome.exitCode, runcError: outcome.errorText, logPath: criuRan ? logPath : undefined, logExcerpt: excerpt?.lines };
  if (outcome.aborted) return new FerryError('ERR_ABORTED', `checkpoint of docker container ${id} interrupted`, { hint: 'Run the command again when ready.', details });
  if (outcome.timedOut) {
    return new FerryError('ERR_CRIU_TIMEOUT', `checkpoint of docker container ${id} did not finish in time; CRIU was killed${lines}`, {
      hint: 'Raise checkpointTimeoutMs for very large containers, and read the CRIU log.',
      details,
    });
  }
  const reason = outcome.errorText || outcome.stderr.trim() || `exit code ${outcome.exitCode}`;
  if (!criuRan) {
    return new FerryError('ERR_RUNTIME_FAILED', `runc checkpoint of docker container ${id} failed: ${reason}`, {
      hint: 'Check the container with `docker ps -a`; `ferry doctor` checks the host.',
      details,
    });
  }
  return new FerryError(preDump ? 'ERR_CRIU_PRE_DUMP_FAILED' : 'ERR_CRIU_DUMP_FAILED', `checkpoint of docker container ${id} failed: ${reason} (log: ${logPath})${lines}`, {
    hint: `Read ${logPath} for the full story; \`ferry doctor\` checks the host.`,
    details,
  });
}

const NOT_EXPERIMENTAL = 'dockerd runs without --experimental: it cannot start a container from a checkpoint';

function notExperimental(what: string): FerryError {
  return new FerryError('ERR_PRECHECK_FEATURE_MISSING', `${what} refused: ${NOT_EXPERIMENTAL}`, {
    hint: 'Start dockerd with --experimental (or "experimental": true in daemon.json); `--leave-running` checkpoints work without it.',
  });
}

function assertDocker(ref: ContainerRef): void {
  if (ref.runtime !== 'docker') {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the docker adapter was asked about a ${ref.runtime} container (${ref.id})`);
  }
  assertName(ref.id);
}

function assertName(id: string): void {
  if (!DOCKER_NAME.test(id)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${id}" is not a valid Docker container name`, {
      hint: 'Docker names use letters, digits and _ . - and start with a letter or digit.',
    });
  }
}

