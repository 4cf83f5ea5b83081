/**
 * Reading runc containers: `runc state` / `runc list` with ferry's errors, and the ContainerInfo built from runc's
 * state, the bundle's config.json, /proc/PID/cgroup and the container's network namespace. Only reads.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ContainerInfo, NetworkAddress } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { processStartTime } from '../criu/page-socket';
import { Freezer } from '../freezer/freezer';
import { readFileNoFollow } from '../host/safe-files';
import { freezerPathOfPid } from './adapter-common';
import type { RecordExtras } from './checkpoint-record';
import type { NetworkSpec } from './runtime-adapter';
import type { RuncCli, RuncOutcome } from './runc-cli';
import { readNetnsInterfaces, type NetnsTools } from './runc-netns';
import { containerStateOf, isBindMount, networkNamespaceOf, managedElsewhere, parseRuncList, parseRuncState, rootfsOf, runningStateOf, type OciConfig, type RuncStateJson } from './runc-state';
import { toolFailure } from './tool-failure';

/** runc's state root when run as root without --root. */
export const DEFAULT_RUNC_ROOT = '/run/runc';

export const RUNC_TOOL_HINT = 'Check the container with `runc list`; `ferry doctor` checks the host.';

export class RuncContainers {
  constructor(
    private readonly cli: RuncCli,
    private readonly tools: NetnsTools,
    private readonly commandTimeoutMs: number,
    /** Checks a name before runc sees it (ERR_PRECHECK_BAD_INPUT). */
    private readonly assertName: (id: string) => void,
  ) {}

  /** `runc state ID`; ERR_RUNTIME_NOT_FOUND (hint: `ferry ps`) when runc has no such container. */
  async state(id: string): Promise<RuncStateJson> {
    this.assertName(id);
    const outcome = await this.cli.run(['state', id], { timeoutMs: this.commandTimeoutMs });
    if (outcome.ok) return parseRuncState(outcome.stdout);
    if (/does not exist/.test(outcome.errorText)) {
      throw new FerryError('ERR_RUNTIME_NOT_FOUND', `runc has no container named ${id}`, {
        hint: 'Run `ferry ps` to see the containers ferry can find.',
        details: { id, runcRoot: this.cli.options.runcRoot },
      });
    }
    throw toolFailure('runc', `state of ${id}`, outcome, RUNC_TOOL_HINT);
  }

  /**
   * The state of a container that should be running (one a restore just made), read from runc's state file and
   * /proc instead of a `runc state` process: the restore's last step is in the frozen window. runc itself is asked
   * whenever the file does not say "running" for certain: no init with the recorded start time, a file of another
   * shape, an exec.fifo (created, not started), a freezer that is not thawed.
   */
  async runningState(id: string): Promise<RuncStateJson> {
    this.assertName(id);
    const dir = join(this.cli.options.runcRoot ?? DEFAULT_RUNC_ROOT, id);
    const text = readFileNoFollow(join(dir, 'state.json'));
    const state = text === undefined ? undefined : runningStateOf(text, processStartTime);
    // runc's own order: no live init is "stopped", an exec.fifo "created", a frozen cgroup "paused".
    if (state && state.id === id && !existsSync(join(dir, 'exec.fifo')) && !frozen(state.pid)) return state;
    return this.state(id);
  }

  async list(): Promise<ContainerInfo[]> {
    const outcome = await this.runc(['list', '--format', 'json'], 'list containers');
    return Promise.all(parseRuncList(outcome.stdout).filter((state) => !managedElsewhere(state)).map((state) => this.describe(state)));
  }

  /**
   * Whether runc knows a container of that name: its state file in runc's root, which is what `runc state` loads
   * (no state.json: "does not exist"). Read directly because a restore asks in the frozen window, where one more
   * runc process cost 25-70 ms. The root is runc's for root (/run/runc) unless --root is given; ferry runs as root
   * (a runc that chose $XDG_RUNTIME_DIR/runc, rootless or in a user namespace, needs runcRoot set).
   */
  async exists(id: string): Promise<boolean> {
    this.assertName(id);
    try {
      return lstatSync(join(this.cli.options.runcRoot ?? DEFAULT_RUNC_ROOT, id, 'state.json')).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** True when container `id` exists (running, paused or created) and joined the network namespace at `path`. */
  async usesNetns(id: string, path: string): Promise<boolean> {
    const state = await this.state(id).catch(() => undefined);
    if (!state || state.status === 'stopped') return false;
    return networkNamespaceOf(tryReadConfig(join(state.bundle, 'config.json')) ?? {})?.path === path;
  }

  /** A quick runc command; ERR_RUNTIME_FAILED with runc's message when it fails. */
  async runc(args: string[], what: string): Promise<RuncOutcome> {
    const outcome = await this.cli.run(args, { timeoutMs: this.commandTimeoutMs });
    if (!outcome.ok) throw toolFailure('runc', what, outcome, RUNC_TOOL_HINT);
    return outcome;
  }

  /** ContainerInfo from runc's state plus the bundle and /proc; parts that cannot be read are left out. */
  async describe(state: RuncStateJson, read: { netns: boolean } = { netns: true }): Promise<ContainerInfo> {
    const info: ContainerInfo = { ref: { runtime: 'runc', id: state.id }, state: containerStateOf(state.status), bundle: state.bundle, createdAt: state.created };
    const live = state.pid > 0 && ['running', 'paused', 'created', 'pausing'].includes(state.status);
    if (live) info.pid = state.pid;
    const config = tryReadConfig(join(state.bundle, 'config.json'));
    const rootfs = state.rootfs || (config ? rootfsOf(config, state.bundle) : undefined);
    if (rootfs) info.rootfs = rootfs;
    const binds = (config?.mounts ?? []).filter((m) => m.source && isBindMount(m));
    if (binds.length > 0) info.bindMounts = binds.map((m) => resolve(state.bundle, m.source!));
    const freezerPath = live ? freezerPathOfPid(state.pid) : undefined;
    if (freezerPath) info.freezerPath = freezerPath;
    const ns = config && read.netns ? networkNamespaceOf(config) : undefined;
    if (!ns) return info;
    let addresses: NetworkAddress[] = [];
    if (live) {
      const interfaces = await readNetnsInterfaces(this.tools, ns.path ?? `/proc/${state.pid}/ns/net`).catch(() => []);
      addresses = interfaces.flatMap((i) => i.addresses);
    }
    info.netns = ns.path ? { path: ns.path, addresses } : { addresses };
    return info;
  }

  /**
   * The record's runc part: config.json and the joined network namespace's interfaces (also noted in `before`).
   * `known`: the same namespace's interfaces as the caller read them before the freeze (taken when the path matches).
   */
  async recordOf(before: ContainerInfo, known?: NetworkSpec): Promise<RecordExtras['runc']> {
    const config = this.bundleConfig(before);
    const ns = networkNamespaceOf(config);
    if (!ns) return { bundle: before.bundle ?? '', config };
    const interfaces =
      ns.path !== undefined && known?.nsPath === ns.path ? known.interfaces.map((i) => ({ ...i, addresses: [...i.addresses] })) : await readNetnsInterfaces(this.tools, ns.path ?? `/proc/${before.pid}/ns/net`);
    const addresses = interfaces.flatMap((i) => i.addresses);
    before.netns = ns.path ? { path: ns.path, addresses } : { addresses };
    return { bundle: before.bundle ?? '', config, netns: ns.path ? { path: ns.path, interfaces } : { interfaces } };
  }

  /** The bundle's config.json; ERR_RUNTIME_FAILED when the bundle was moved or deleted. */
  bundleConfig(container: ContainerInfo): OciConfig {
    const path = join(container.bundle ?? '', 'config.json');
    const config = tryReadConfig(path);
    if (config) return config;
    throw new FerryError('ERR_RUNTIME_FAILED', `cannot read ${path} of runc container ${container.ref.id}`, {
      hint: 'ferry needs the bundle the container was started from; check it was not moved or deleted.',
      details: { id: container.ref.id, bundle: container.bundle },
    });
  }
}

/** config.json at `path`, or undefined when it cannot be read. */
export function tryReadConfig(path: string): OciConfig | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as OciConfig;
  } catch {
    return undefined;
  }
}

/** Whether the process's freezer cgroup is not thawed; false when it cannot be read. */
function frozen(pid: number): boolean {
  const path = freezerPathOfPid(pid);
  if (!path) return false;
  try {
    return Freezer.at(path).state() !== 'thawed';
  } catch {
    return false;
  }
}
