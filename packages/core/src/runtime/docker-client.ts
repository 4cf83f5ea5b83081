/**
 * ferry's way of talking to dockerd: dockerode over the daemon's unix socket (no docker CLI, no shell), one client
 * per deadline, every error translated into ferry's codes (docker-errors.ts), names checked before the daemon sees
 * them, and the image operations a migration needs (RuntimeImages).
 */
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import { FerryError, isFerryError } from '../model/ferry-error';
import type { ContainerInfo } from '../model/container';
import { freezerPathOfPid, nameRule } from './adapter-common';
import { containerStateOf, DOCKER_NAME, nameOf, namesContainer, rejoinedNetworks, type DockerInspect } from './docker-config';
import { translateDockerError, type TranslateContext } from './docker-errors';
import type { RuntimeAvailability, RuntimeImages } from './runtime-adapter';

export const dockerNames = nameRule('docker', 'Docker', DOCKER_NAME, 'Docker names use letters, digits and _ . - and start with a letter or digit.');
export const NOT_EXPERIMENTAL = 'dockerd runs without --experimental: it cannot start a container from a checkpoint';

/** ERR_PRECHECK_FEATURE_MISSING: this daemon cannot start a container from a checkpoint. */
export function notExperimental(what: string): FerryError {
  return new FerryError('ERR_PRECHECK_FEATURE_MISSING', `${what} refused: ${NOT_EXPERIMENTAL}`, {
    hint: 'Start dockerd with --experimental (or "experimental": true in daemon.json); `--leave-running` checkpoints work without it.',
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

export class DockerClient {
  readonly socket: { socketPath: string } | { unusable: string };
  private clients = new Map<number, Dockerode>();
  private daemon: { root: string; experimental: boolean } | undefined;

  constructor(
    private readonly dockerHost: string,
    private readonly timeouts: { commandTimeoutMs: number; availabilityTimeoutMs: number; restoreTimeoutMs: number },
  ) {
    this.socket = dockerSocketOf(dockerHost);
  }

  /** Whether ferry can checkpoint containers of this daemon, quickly (the availability timeout), with the reason. */
  async availability(): Promise<RuntimeAvailability> {
    if ('unusable' in this.socket) return { usable: false, reason: this.socket.unusable };
    if (!existsSync(this.socket.socketPath)) return { usable: false, reason: `no dockerd socket at ${this.socket.socketPath}` };
    let version: string | undefined;
    try {
      version = ((await this.client(this.timeouts.availabilityTimeoutMs).version()) as { Version?: string }).Version;
    } catch (err) {
      return { usable: false, reason: translateDockerError(err, this.ctx('version')).message };
    }
    const known = version ? { version } : {};
    if (process.getuid?.() !== 0) return { usable: false, reason: 'checkpointing Docker containers needs root', ...known };
    const daemon = await this.daemonInfo().catch(() => undefined);
    if (daemon && !daemon.experimental) return { usable: false, reason: NOT_EXPERIMENTAL, ...known };
    return { usable: true, ...known };
  }

  /** Every container of the daemon (a quick ping first: `ferry ps` must not wait out a stuck daemon). */
  async list(): Promise<ContainerInfo[]> {
    this.requireSocket();
    await this.call('ping', (d) => d.ping(), undefined, this.timeouts.availabilityTimeoutMs);
    const summaries = await this.call('list containers', (d) => d.listContainers({ all: true }));
    const client = this.client();
    const infos = await Promise.all(summaries.map((s) => client.getContainer(s.Id).inspect().then(containerInfoOf, () => undefined))); // removed meanwhile
    return infos.filter((i): i is ContainerInfo => i !== undefined);
  }

  /** One API call with ferry's errors, under `timeoutMs` (the command timeout by default). */
  async call<T>(what: string, body: (docker: Dockerode) => Promise<T>, subject?: string, timeoutMs?: number): Promise<T> {
    try {
      return await body(this.client(timeoutMs));
    } catch (err) {
      throw translateDockerError(err, this.ctx(what, subject));
    }
  }

  ctx(what: string, subject?: string): TranslateContext {
    const socket = 'socketPath' in this.socket ? this.socket.socketPath : this.dockerHost;
    return subject === undefined ? { what, socket } : { what, socket, subject };
  }

  /** The container `id` names exactly (its name, or an id of 12+ characters); ERR_RUNTIME_NOT_FOUND otherwise. */
  async inspect(id: string): Promise<DockerInspect> {
    dockerNames.name(id);
    const inspect = await this.call(`inspect ${id}`, (d) => d.getContainer(id).inspect(), id);
    if (!namesContainer(inspect, id)) {
      // Docker matched an id prefix: ferry only takes names and ids of 12+ characters.
      throw new FerryError('ERR_RUNTIME_NOT_FOUND', `docker has no container named ${id}`, { hint: 'Run `ferry ps` to see the containers ferry can find.', details: { id } });
    }
    return inspect;
  }

  async exists(id: string): Promise<boolean> {
    return this.inspect(id).then(
      () => true,
      (err: unknown) => {
        if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return false;
        throw err;
      },
    );
  }

  /** Where the daemon keeps containers, and whether it restores from checkpoints at all (only with --experimental). */
  async daemonInfo(): Promise<{ root: string; experimental: boolean }> {
    if (this.daemon === undefined) {
      const info = (await this.call('info', (d) => d.info(), undefined, this.timeouts.availabilityTimeoutMs)) as { DockerRootDir?: string; ExperimentalBuild?: boolean };
      if (!info.DockerRootDir) throw new FerryError('ERR_RUNTIME_FAILED', 'docker info does not say where the Docker root is');
      this.daemon = { root: info.DockerRootDir, experimental: info.ExperimentalBuild === true };
    }
    return this.daemon;
  }

  /** RuntimeImages over this daemon. */
  images(): RuntimeImages {
    return {
      imageOf: async (container) => (await this.inspect(container.ref.id)).Image,
      has: (image) => this.hasImage(image),
      save: (image, sink) => this.saveImage(image, sink),
      load: (tar) => this.loadImage(tar),
      remove: (image) => this.removeImage(image),
      networksOf: async (container) => rejoinedNetworks(await this.inspect(container.ref.id)),
      missingNetworks: (names) => this.missingNetworks(names),
    };
  }

  private async missingNetworks(names: readonly string[]): Promise<string[]> {
    const missing: string[] = [];
    for (const name of names) {
      try {
        await this.call(`inspect network ${name}`, (d) => d.getNetwork(name).inspect(), name);
      } catch (err) {
        if (!isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) throw err;
        missing.push(name);
      }
    }
    return missing;
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.call(`inspect image ${image}`, (d) => d.getImage(image).inspect(), image);
      return true;
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return false;
      throw err;
    }
  }

  /** ERR_RUNTIME_UNAVAILABLE when DOCKER_HOST is no local unix socket. */
  requireSocket(): string {
    if ('unusable' in this.socket) {
      throw new FerryError('ERR_RUNTIME_UNAVAILABLE', this.socket.unusable, { hint: 'Point DOCKER_HOST at the local daemon: unix:///var/run/docker.sock.' });
    }
    return this.socket.socketPath;
  }

  client(timeoutMs = this.timeouts.commandTimeoutMs): Dockerode {
    const socketPath = this.requireSocket();
    let client = this.clients.get(timeoutMs);
    if (!client) {
      client = new (loadDockerode())({ socketPath, timeout: timeoutMs });
      this.clients.set(timeoutMs, client);
    }
    return client;
  }

  /** `docker save` of the image into `sink` (not ended: the caller owns it). */
  private async saveImage(image: string, sink: Writable): Promise<void> {
    // By a name that points at this very image when there is one: `docker save ID` would lose the tags.
    const inspect = await this.call(`inspect image ${image}`, (d) => d.getImage(image).inspect(), image);
    const tag = inspect.RepoTags?.find((t) => t && !t.endsWith(':<none>'));
    const stream = (await this.call(`save image ${image}`, (d) => d.getImage(tag ?? inspect.Id).get(), image, this.timeouts.restoreTimeoutMs)) as Readable;
    await new Promise<void>((resolvePipe, reject) => {
      stream.once('error', reject);
      sink.once('error', reject);
      stream.once('end', () => resolvePipe());
      stream.pipe(sink, { end: false });
    });
  }

  private async loadImage(tar: Readable): Promise<void> {
    const answer = (await this.call('load image', (d) => d.loadImage(tar, { quiet: true }), undefined, this.timeouts.restoreTimeoutMs)) as Readable;
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
}

/** ContainerInfo from `docker inspect` and /proc (the freezer of a live container). */
export function containerInfoOf(inspect: DockerInspect): ContainerInfo {
  const state = containerStateOf(inspect.State);
  const info: ContainerInfo = { ref: { runtime: 'docker', id: nameOf(inspect) }, state, createdAt: inspect.Created };
  const pid = inspect.State.Pid;
  if (pid > 0 && (state === 'running' || state === 'paused')) {
    info.pid = pid;
    const freezerPath = freezerPathOfPid(pid);
    if (freezerPath) info.freezerPath = freezerPath;
  }
  return info;
}

/**
 * dockerode, loaded when a command first talks to dockerd: with the gRPC stack it brings it adds ~60 ms to the start
 * of every ferry process (0.45 s against 0.39 s here: the CLI, the agent, a move's guardian and page relay), Docker
 * or not.
 */
function loadDockerode(): typeof Dockerode {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('dockerode') as typeof Dockerode;
}
