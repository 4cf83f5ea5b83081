/**
 * Pure functions over `docker inspect` data: the container's state in ferry's words, what CRIU (or a restore on
 * another host) cannot handle, and the create options that make the same container again on a destination.
 * Kept apart from the adapter so every rule is unit-tested without a daemon.
 */
import type Dockerode from 'dockerode';
import type { ContainerState } from '../model/container';
import { FerryError } from '../model/ferry-error';
import type { RecordExtras } from './checkpoint-record';

/** The parts of `docker inspect` ferry reads; dockerode's type, narrowed to what the daemon always sends. */
export type DockerInspect = Dockerode.ContainerInspectInfo;

/** Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (the daemon's own rule); full and short ids are hex. */
export const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

export function containerStateOf(state: Pick<DockerInspect['State'], 'Status' | 'Paused' | 'Running'>): ContainerState {
  if (state.Paused) return 'paused';
  switch (state.Status) {
    case 'running':
      return 'running';
    case 'paused':
      return 'paused';
    case 'created':
      return 'created';
    case 'exited':
    case 'dead':
      return 'stopped';
    default:
      return 'unknown'; // restarting, removing
  }
}

/** The name docker shows, without the leading slash the API keeps. */
export function nameOf(inspect: Pick<DockerInspect, 'Name'>): string {
  return inspect.Name.replace(/^\//, '');
}

/** The record's Docker part: what a restore needs to make the same container again (rootfsChanges come later). */
export function recordedContainer(inspect: DockerInspect): RecordExtras['docker']['docker'] {
  const image = inspect.Config.Image;
  const imageName = image && !image.startsWith('sha256:') ? { imageName: image } : {};
  return { containerId: inspect.Id, imageId: inspect.Image, ...imageName, create: createOptionsOf(inspect) };
}

/**
 * True when `wanted` (what the user typed) names this container exactly: its name, its full id, or a short id of
 * at least 12 characters. Docker itself also accepts any unique id prefix: "abc" could then silently pick a
 * container whose id starts with abc although the user meant a container named abc elsewhere.
 */
export function namesContainer(inspect: Pick<DockerInspect, 'Name' | 'Id'>, wanted: string): boolean {
  if (nameOf(inspect) === wanted) return true;
  return /^[0-9a-f]{12,64}$/.test(wanted) && inspect.Id.startsWith(wanted);
}

export interface ConfigProblem {
  reason: string;
  hint: string;
}

/**
 * Everything in the container's configuration that ferry refuses before anything is frozen: a terminal (CRIU cannot
 * dump a pty whose other end the shim holds), mounts of host directories or volumes (their data stays on this host,
 * and a restore elsewhere would find other data or none), and namespaces shared with the host or another container
 * (CRIU would dump, and a restore would need, state that is not the container's).
 */
export function configProblems(inspect: DockerInspect): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const host = inspect.HostConfig ?? {};
  if (inspect.Config?.Tty) {
    problems.push({
      reason: 'it has a terminal (started with -t)',
      hint: 'Run it without -t (`docker run -d ...`, stdio as pipes); CRIU cannot checkpoint a terminal the Docker shim holds.',
    });
  }
  for (const mount of inspect.Mounts ?? []) {
    if (mount.Type === 'bind') {
      problems.push({
        reason: `it bind-mounts the host directory ${mount.Source} on ${mount.Destination}`,
        hint: 'Run it without host bind mounts (-v /host/dir:...); their data stays on this host. tmpfs mounts (--tmpfs) are fine.',
      });
    } else if (mount.Type === 'volume') {
      problems.push({
        reason: `it mounts the volume ${mount.Name ?? mount.Source} on ${mount.Destination}`,
        hint: 'Run it without volumes (-v NAME:... or VOLUME in the image); a volume lives on this host only. tmpfs mounts (--tmpfs) are fine.',
      });
    } else if (mount.Type !== 'tmpfs') {
      problems.push({
        reason: `it has a ${mount.Type} mount on ${mount.Destination}`,
        hint: 'Run it with tmpfs mounts only.',
      });
    }
  }
  const shared = (what: string, mode: string | undefined) => {
    if (mode === 'host' || mode?.startsWith('container:')) {
      problems.push({
        reason: `it shares the ${what} namespace of ${mode === 'host' ? 'the host' : mode.slice('container:'.length)} (${mode})`,
        hint: `Run it with its own ${what} namespace; ferry moves a container together with its namespaces only.`,
      });
    }
  };
  shared('network', host.NetworkMode);
  shared('pid', host.PidMode);
  shared('ipc', host.IpcMode);
  shared('uts', host.UTSMode);
  return problems;
}

/**
 * Create options that make the checkpointed container again (on this host or another one): the same image, the
 * same process, environment, limits and namespaces options, the same hostname (CRIU restores the UTS namespace,
 * Docker's /etc/hostname must agree). `image` is what to create from: the name when the destination's image of that
 * name is the same image, else its id.
 */
export function createOptionsOf(inspect: DockerInspect): Dockerode.ContainerCreateOptions {
  const config = inspect.Config;
  const macAddress = (config as { MacAddress?: string }).MacAddress || undefined;
  const options: Dockerode.ContainerCreateOptions = {
    Image: inspect.Image,
    Hostname: config.Hostname,
    Domainname: config.Domainname,
    User: config.User,
    Env: config.Env ?? undefined,
    Cmd: config.Cmd ?? undefined,
    WorkingDir: config.WorkingDir,
    Labels: config.Labels ?? undefined,
    OpenStdin: config.OpenStdin,
    StdinOnce: config.StdinOnce,
    AttachStdin: config.AttachStdin,
    AttachStdout: config.AttachStdout,
    AttachStderr: config.AttachStderr,
    Tty: false,
    ExposedPorts: config.ExposedPorts ?? undefined,
    // `--mac-address` (Docker <= 24 keeps it here): without it the destination's daemon makes up another MAC for the
    // same address, and clients on the LAN keep sending to the old one (their ARP entry stays confirmed by the
    // connection's own traffic) until it ages out.
    MacAddress: macAddress,
    StopSignal: (config as { StopSignal?: string }).StopSignal,
    HostConfig: inspect.HostConfig,
  };
  // Entrypoint null means "the image's"; an explicit one (also []) must be repeated.
  const entrypoint = config.Entrypoint as string | string[] | null | undefined;
  if (entrypoint !== null && entrypoint !== undefined) options.Entrypoint = entrypoint;
  const [mode] = rejoinedNetworks(inspect);
  if (mode) {
    // A user network: join it again with the same aliases, fixed addresses and fixed MAC (Docker assigns the rest;
    // Docker >= 25 reads a fixed MAC from the endpoint).
    const endpoint = inspect.NetworkSettings.Networks[mode]!;
    options.NetworkingConfig = {
      EndpointsConfig: { [mode]: { IPAMConfig: endpoint.IPAMConfig ?? undefined, Aliases: endpoint.Aliases ?? undefined, ...(macAddress ? { MacAddress: macAddress } : {}) } },
    };
  }
  return options;
}

/**
 * The entries of a `docker diff` answer. Docker answers `null` for a container that changed nothing in its layer,
 * and docker-modem hands a JSON body that parses to null back as the raw bytes: so null, an empty body and the bytes
 * `null` all mean no change. Anything else that is not a list is not an answer ferry understands.
 */
export function diffEntriesOf(body: unknown): { Path: string; Kind: number }[] {
  if (Array.isArray(body)) return body as { Path: string; Kind: number }[];
  const text = body === null || body === undefined ? '' : Buffer.isBuffer(body) || typeof body === 'string' ? body.toString().trim() : undefined;
  if (text === '' || text === 'null') return [];
  throw new FerryError('ERR_RUNTIME_FAILED', `docker diff answered ${text === undefined ? typeof body : JSON.stringify(text.slice(0, 80))}, not a list of changes`, {
    hint: 'Check the Docker daemon (`docker diff NAME` on this host).',
  });
}

/**
 * The user network (by name) that createOptionsOf() joins the container to again, which the destination's daemon
 * must have: the network mode's own network, unless it is none, the default bridge, the host's or another
 * container's.
 */
export function rejoinedNetworks(inspect: Pick<DockerInspect, 'HostConfig' | 'NetworkSettings'>): string[] {
  const mode = inspect.HostConfig?.NetworkMode;
  if (!mode || ['none', 'default', 'bridge', 'host'].includes(mode) || mode.startsWith('container:')) return [];
  return inspect.NetworkSettings?.Networks?.[mode] ? [mode] : [];
}

/** Docker's bind mounts over files of every container: written by Docker, not by the container. */
const DOCKER_MANAGED = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
const KERNEL_FILESYSTEMS = ['/dev', '/proc', '/sys'];

/**
 * From `docker diff` (Kind 0 changed, 1 added, 2 deleted): the paths to carry to a restore elsewhere, and the
 * deletions. Paths under a mount (tmpfs: CRIU carries its contents), Docker's own files and kernel filesystems stay.
 */
export function rootfsChangesToCarry(changes: readonly { Path: string; Kind: number }[], mountDestinations: readonly string[]): { carried: string[]; deleted: string[] } {
  const under = (path: string, roots: readonly string[]) => roots.some((r) => path === r || path.startsWith(`${r.replace(/\/+$/, '')}/`));
  const skip = (path: string) => !path.startsWith('/') || path.split('/').includes('..') || DOCKER_MANAGED.includes(path) || under(path, KERNEL_FILESYSTEMS) || under(path, mountDestinations);
  const kept = changes.filter((c) => !skip(c.Path));
  return {
    carried: kept.filter((c) => c.Kind !== 2).map((c) => c.Path).sort(),
    deleted: kept.filter((c) => c.Kind === 2).map((c) => c.Path).sort(),
  };
}
