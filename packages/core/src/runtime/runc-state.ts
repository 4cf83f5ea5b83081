/**
 * What runc tells about a container and what its bundle says, as pure functions over the texts (runc's JSON,
 * config.json, /proc/PID/cgroup, /proc/PID/fd links), so they are unit-tested without runc.
 */
import { isAbsolute, join, resolve } from 'node:path';
import type { ContainerState } from '../model/container';
import type { CgroupInfo } from '../host/cgroup-layout';

/** One entry of `runc list --format json`, or the output of `runc state ID`. */
export interface RuncStateJson {
  ociVersion?: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/** Containers another manager owns in runc's state (Podman's share runc's default root): listed by their own adapter. */
export function managedElsewhere(state: RuncStateJson): boolean {
  return state.annotations?.['io.container.manager'] === 'libpod';
}

/** The parts of an OCI runtime config.json ferry reads or rewrites; everything else is carried along untouched. */
export interface OciConfig {
  ociVersion?: string;
  process?: { terminal?: boolean; args?: string[]; [key: string]: unknown };
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  linux?: {
    namespaces?: { type: string; path?: string }[];
    cgroupsPath?: string;
    [key: string]: unknown;
  };
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export function parseRuncState(text: string): RuncStateJson {
  const value = JSON.parse(text) as RuncStateJson;
  if (!value || typeof value.id !== 'string' || typeof value.status !== 'string') {
    throw new Error(`unexpected runc state output: ${text.slice(0, 200)}`);
  }
  return value;
}

/**
 * What `runc state ID` would print for a running container, from runc's own state file (ROOT/ID/state.json) and the
 * init's start time as /proc shows it now: undefined unless the file has runc's shape and its init is that process
 * (same start time), so a reader falls back to runc for anything else (a stopped, paused or half-made container).
 */
export function runningStateOf(stateFileText: string, initStartTime: (pid: number) => string | undefined): RuncStateJson | undefined {
  let file: unknown;
  try {
    file = JSON.parse(stateFileText);
  } catch {
    return undefined;
  }
  const f = file as { id?: unknown; init_process_pid?: unknown; init_process_start?: unknown; created?: unknown; config?: { rootfs?: unknown; labels?: unknown } };
  if (typeof f?.id !== 'string' || typeof f.init_process_pid !== 'number' || !Number.isInteger(f.init_process_pid) || f.init_process_pid <= 0) return undefined;
  if (typeof f.init_process_start !== 'number' || typeof f.created !== 'string' || typeof f.config?.rootfs !== 'string') return undefined;
  const labels = Array.isArray(f.config.labels) ? f.config.labels : [];
  const bundle = labels.find((l): l is string => typeof l === 'string' && l.startsWith('bundle='))?.slice('bundle='.length);
  if (!bundle) return undefined;
  if (initStartTime(f.init_process_pid) !== String(f.init_process_start)) return undefined;
  return { id: f.id, pid: f.init_process_pid, status: 'running', bundle, rootfs: f.config.rootfs, created: f.created };
}

/** `runc list --format json` prints `null` when there are no containers. */
export function parseRuncList(text: string): RuncStateJson[] {
  const value = JSON.parse(text.trim() || 'null') as RuncStateJson[] | null;
  if (value === null) return [];
  if (!Array.isArray(value)) throw new Error(`unexpected runc list output: ${text.slice(0, 200)}`);
  return value;
}

/** runc's statuses: created, running, pausing, paused, stopped. "pausing" is a transition: reported as unknown. */
export function containerStateOf(status: string): ContainerState {
  switch (status) {
    case 'running':
    case 'paused':
    case 'stopped':
    case 'created':
      return status;
    default:
      return 'unknown';
  }
}

export function networkNamespaceOf(config: OciConfig): { path?: string } | undefined {
  const ns = config.linux?.namespaces?.find((n) => n.type === 'network');
  if (!ns) return undefined;
  return ns.path ? { path: ns.path } : {};
}

export function rootfsOf(config: OciConfig, bundle: string): string | undefined {
  const path = config.root?.path;
  if (!path) return undefined;
  return isAbsolute(path) ? path : resolve(bundle, path);
}

/**
 * The freezer directory of a process from its /proc/PID/cgroup text: the v1 freezer hierarchy's line when there is
 * one, else the v2 (`0::`) line under the unified mountpoint (where cgroup.freeze lives).
 */
export function freezerPathOf(procCgroup: string, cgroups: CgroupInfo): string | undefined {
  const lines = procCgroup.split('\n').filter(Boolean);
  if (cgroups.freezer?.kind === 'v1') {
    for (const line of lines) {
      const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
      if (controllers?.split(',').includes('freezer') && path !== undefined) return join(cgroups.freezer.mountpoint, path);
    }
    return undefined;
  }
  if (cgroups.freezer?.kind === 'v2') {
    const line = lines.find((l) => l.startsWith('0::'));
    return line ? join(cgroups.freezer.mountpoint, line.slice(3)) : undefined;
  }
  return undefined;
}

/**
 * Why CRIU cannot dump a container with these stdio targets (readlink of /proc/PID/fd/0..2), or undefined when it
 * can. runc containers must have /dev/null or pipes: a terminal needs a console CRIU cannot recreate, and a host file
 * lies outside the container's mounts (CRIU: "Can't lookup mount=N for fd=2 path=...").
 */
export function stdioProblem(links: readonly (string | undefined)[]): string | undefined {
  const names = ['stdin', 'stdout', 'stderr'];
  for (const [fd, link] of links.entries()) {
    if (link === undefined || link === '/dev/null' || /^pipe:\[\d+\]$/.test(link)) continue;
    const terminal = /^\/dev\/(pts\/\d+|tty\w*|console)$/.test(link);
    const what = terminal ? 'a terminal' : /^\w+:\[/.test(link) ? 'a socket or other special file' : 'a host file';
    return `its ${names[fd] ?? `fd ${fd}`} is ${what} (${link})`;
  }
  return undefined;
}

/**
 * The config.json to restore with under another name or into another network namespace: root.path made absolute
 * (the copy lives in another directory), the netns path replaced, and a cgroupsPath that ends in the old name
 * renamed (two containers must not share a cgroup: the original may be paused, and its frozen cgroup would freeze
 * the copy too).
 */
export function rewriteConfigForRestore(
  config: OciConfig,
  change: { bundle: string; netnsPath?: string; oldName: string; newName: string },
): OciConfig {
  const copy = absoluteBundlePaths(config, change.bundle);
  if (change.netnsPath !== undefined) {
    const ns = copy.linux?.namespaces?.find((n) => n.type === 'network');
    if (ns) ns.path = change.netnsPath;
  }
  const cgroupsPath = copy.linux?.cgroupsPath;
  if (copy.linux && cgroupsPath && change.oldName !== change.newName) {
    // cgroupfs paths ("/ferry/NAME") end in a '/' segment, systemd ones ("slice:prefix:NAME") in a ':' segment.
    const sep = cgroupsPath.includes(':') ? ':' : '/';
    const parts = cgroupsPath.split(sep);
    if (parts[parts.length - 1] === change.oldName) {
      parts[parts.length - 1] = change.newName;
      copy.linux.cgroupsPath = parts.join(sep);
    }
  }
  return copy;
}

/**
 * A copy of `config` with the paths runc reads relative to the bundle (root.path, bind mount sources) made absolute
 * against `bundle`, the directory the config.json was in: a config restored from anywhere else (a rewritten copy, the
 * one recorded with the images) means the same files.
 */
export function absoluteBundlePaths(config: OciConfig, bundle: string): OciConfig {
  const copy = structuredClone(config);
  if (copy.root?.path && !isAbsolute(copy.root.path)) copy.root.path = resolve(bundle, copy.root.path);
  for (const m of copy.mounts ?? []) {
    if (m.source && !isAbsolute(m.source) && isBindMount(m)) m.source = resolve(bundle, m.source);
  }
  return copy;
}

export function isBindMount(m: NonNullable<OciConfig['mounts']>[number]): boolean {
  return m.type === 'bind' || m.options?.some((o) => o === 'bind' || o === 'rbind') === true;
}

/** Applies a restore's `relocate` map to the root path and the bind mount sources (longest matching key first). */
export function relocatePaths(config: OciConfig, relocate: Readonly<Record<string, string>>): void {
  const keys = Object.keys(relocate).sort((a, b) => b.length - a.length);
  const moved = (path: string) => {
    const key = keys.find((k) => path === k || path.startsWith(`${k}/`));
    return key === undefined ? path : join(relocate[key]!, path.slice(key.length));
  };
  if (config.root?.path && isAbsolute(config.root.path)) config.root.path = moved(config.root.path);
  for (const m of config.mounts ?? []) {
    if (m.source && isAbsolute(m.source) && isBindMount(m)) m.source = moved(m.source);
  }
}
