/** The agent's methods and their parameters/results: the contract between `ferry migrate` and `ferry agent`. */
import type { NetworkSpec, PrepareNetworkResult, RestoreSteps, RuntimeName } from '@ferry/core';
export type { PrepareNetworkResult };

export interface HostSummary {
  hostId: string;
  hostname: string;
  kernel: string;
  arch: string;
  pageSizeBytes: number;
  ferryVersion: string;
  criu: { version?: string; versionOk: boolean; checkOk: boolean; memTrack: boolean; lazyPages: boolean };
  runtimes: { name: RuntimeName; usable: boolean; reason?: string }[];
  freeDiskBytes: number;
  /** fs.pipe-max-size: CRIU's lazy pages need a big pipe (core's strategy rule). */
  pipeMaxSizeBytes?: number;
  /** ferry can read other processes' memory here (hash-pre-copy's rounds). */
  memoryRead?: boolean;
}

export interface HelloParams {
  protocol: number;
  ferryVersion: string;
  source: { hostId: string; hostname: string };
}

export interface HelloResult {
  protocol: number;
  host: HostSummary;
}

export interface PrepareParams {
  migrationId: string;
  runtime: RuntimeName;
  name: string;
}

export interface UploadParams {
  migrationId: string;
  /**
   * `pre/N`: CRIU pre-copy round N (precopy/criu-precopy.ts); `rootfs`, `mount/N`: a root filesystem or a
   * bind-mounted directory that lay outside the bundle on the source.
   */
  part: 'bundle' | 'rootfs' | 'images' | 'cpuinfo' | `pre/${number}` | `mount/${number}`;
}

export interface UploadResult {
  files: number;
  bytes: number;
}

export interface RestoreParams {
  migrationId: string;
  /** Post-copy: the pages come over the link opened by `page-link` (the source's page server at its far end). */
  lazyPagesLink?: boolean;
  /** Hash-pre-copy's lazy restore: the pages come from this host's pre-copy chain (agent/local-page-fill.ts). */
  localLazyPages?: boolean;
  /** Clones: new addresses (CIDR by interface) for the re-created network namespace. */
  readdress?: Record<string, string>;
  /** Paths on the source (the bundle, a rootfs, bind-mounted directories) and the parts they were copied as. */
  relocate?: Record<string, string>;
  tcpEstablished: boolean;
  fileLocks: boolean;
  extUnixSk: boolean;
}

/** Before the freeze: the source's view of the container's network namespace, for the destination to make ahead. */
export interface PrepareNetworkParams {
  migrationId: string;
  network: NetworkSpec;
  /** Clones: new addresses (CIDR by interface), as the restore will be asked. */
  readdress?: Record<string, string>;
}

export interface RestoreResultMessage {
  pid?: number;
  restoreMs: number;
  /** Where the destination's restore time went: its own preparation (agentMs: page server, chain), then the runtime's steps. */
  steps?: Partial<RestoreSteps> & { agentMs: number };
}

/** The destination's word on a move, asked over a new connection (`ferry agent --status ID`). */
export interface RemoteOutcome {
  /** The destination's decision; undefined when it has none (it never prepared the move, or forgot it). */
  decision?: 'committed' | 'aborted';
  /** Post-copy: whether every page arrived, or the copy was removed because some could not. */
  pages?: 'complete' | 'lost' | 'pending';
}

/** `page-link` and `page-server`: the unix socket (in the migration's 0700 directory) the source's SSH opens. */
/** `ferry agent --status ID` options. abandonPages: the source's end of post-copy's page link is gone for good. */
export interface StatusOptions {
  abandonPages?: boolean;
}

export interface PageLinkResult {
  socketPath: string;
  /** The far end is a page-link keeper: the source re-dials a broken link instead of losing the stream. */
  resumable?: boolean;
}
