/** Domain types shared by runtimes, the CLI and the migration engine. */

export type RuntimeName = 'runc' | 'lxc' | 'docker';

export interface ContainerRef {
  runtime: RuntimeName;
  /** The runtime's own name or id for the container. */
  id: string;
}

export type ContainerState = 'running' | 'paused' | 'stopped' | 'created' | 'unknown';

export interface NetworkAddress {
  /** Interface name inside the container's network namespace, e.g. "eth0". */
  ifname: string;
  family: 'inet' | 'inet6';
  /** CIDR, e.g. "10.88.0.2/24". */
  address: string;
}

export interface ContainerInfo {
  ref: ContainerRef;
  state: ContainerState;
  /** Host pid of the container's init, when running or paused. */
  pid?: number;
  /** OCI bundle (runc): the directory with config.json. */
  bundle?: string;
  rootfs?: string;
  /** Host paths the container bind-mounts (runc: config.json mounts), when known. */
  bindMounts?: string[];
  /** The cgroup freezer directory of the container, when known. */
  freezerPath?: string;
  /** Network namespace: a path when the container joined an existing one (external to CRIU). */
  netns?: { path?: string; addresses: NetworkAddress[] };
  createdAt?: string;
}

/** Timings and sizes of one checkpoint, from CRIU's stats and the image directory. */
export interface CheckpointStats {
  frozenMs?: number;
  memdumpMs?: number;
  memwriteMs?: number;
  pagesWritten?: number;
  pagesSkippedParent?: number;
  imageBytes: number;
  totalMs: number;
}
