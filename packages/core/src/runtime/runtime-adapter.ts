/**
 * What ferry needs from a container runtime. One file per runtime in this folder, registered in registry.ts;
 * runc-adapter.ts is the commented reference implementation new runtimes copy. Checkpoint and restore run through one
 * pipeline (checkpoint-pipeline.ts, restore-pipeline.ts); an adapter supplies its hooks.
 *
 * State contract for every adapter:
 * - checkpoint(): with leaveRunning the container keeps running (or stays paused if it was paused); without, it is
 *   stopped and removed from the runtime only after CRIU succeeded. When checkpoint() throws, the container is in the
 *   state it was in before the call.
 * - restore(): when it returns, the container runs under `name`; when it throws, nothing of it runs and the runtime
 *   holds no container of that name that restore() created.
 */
import type { Readable, Writable } from 'node:stream';
import type { NotifyHandler } from '../criu/criu-client';
import type { CheckpointStats, ContainerInfo, ContainerRef, RuntimeName } from '../model/container';
import type { Fence, FenceRecord } from './network-fence';
import type { NetnsInterface } from './runc-netns';

export type { Fence, FenceRecord } from './network-fence';

export interface CheckpointOptions {
  imagesDir: string;
  workDir?: string;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  extUnixSk?: boolean;
  /** Parent image directory, relative to imagesDir (incremental dumps where memory tracking exists). */
  parentImage?: string;
  preDump?: boolean;
  /**
   * Post-copy: dump everything but the memory pages, then serve the pages from a page server on address:port until
   * the destination has pulled them all (the source tree is frozen throughout and killed at the end). onReady fires
   * when the images are complete and the page server listens; the call resolves when every page was served.
   */
  lazyPages?: { address: string; port: number; onReady: () => void };
  /** Stream memory pages to a CRIU page server (e.g. the destination's, through a tunnel) instead of imagesDir. */
  pageServer?: { address: string; port: number };
  /**
   * Runs the dump tool (runc checkpoint, lxc-checkpoint, Docker's runc) inside this network namespace
   * (`nsenter --net=PATH`): whatever CRIU listens on (a lazy dump's page server) or connects to is reachable only
   * from there. Must name a network namespace (ERR_PRECHECK_BAD_INPUT otherwise) with lo up: CRIU probes TCP repair
   * over loopback where it runs (without it: "kerndat_tcp_repair failed ... Network is unreachable", measured). LXC
   * runs only CRIU there (lxc-checkpoint reaches its container's monitor over an abstract socket of this namespace).
   */
  netnsPath?: string;
  onNotify?: NotifyHandler;
  signal?: AbortSignal;
  /**
   * What the caller read of the container before it froze it (a move: the container at its start, its network
   * before the freeze). A runtime may take these instead of reading them again while clients wait; only facts a
   * freeze does not change: which container it is (its init pid and bundle) and its network namespace's interfaces.
   */
  known?: KnownContainer;
}

/**
 * What a caller read of a container before it froze it (a move: the container at its start, its network right
 * before the freeze): only facts a freeze does not change, which a runtime may take instead of reading them again
 * while clients wait.
 */
export interface KnownContainer {
  container: ContainerInfo;
  network?: NetworkSpec;
}

export interface RestoreOptions {
  imagesDir: string;
  workDir?: string;
  /** Name of the restored container; defaults to the checkpointed one. */
  name?: string;
  /** Bundle to restore into (runc); defaults to the one recorded at checkpoint. */
  bundle?: string;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  extUnixSk?: boolean;
  /** Post-copy: memory comes from a `criu lazy-pages` daemon the caller started with the same work dir. */
  lazyPages?: boolean;
  /**
   * New addresses (CIDR by interface name) for a re-created network namespace, with fresh MACs: a clone must not
   * answer for the original's addresses.
   */
  readdress?: Readonly<Record<string, string>>;
  /**
   * Keep the restored copy off the network (its re-created interfaces unplugged from the uplink) until
   * releaseNetwork(): a migration's destination must not answer clients before it has committed. Runtimes that
   * cannot hold it (their restore plugs the interfaces in) ignore this, and have no releaseNetwork(). runc holds the
   * namespace's packets (queued, delivered at the release: docs/network-switchover.md) where it can.
   */
  holdNetwork?: boolean;
  /**
   * Paths of the checkpointed configuration that live elsewhere on this host now (a migration copied the bundle, and
   * a rootfs or bind mount sources that lay outside it): each key, a path or a directory above paths, is replaced by
   * its value in the root path and the bind mount sources. Only runtimes with features.relocatablePaths honour it.
   */
  relocate?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

export interface CheckpointResult {
  container: ContainerInfo;
  imagesDir: string;
  stats: CheckpointStats;
}

export interface RestoreResult {
  container: ContainerInfo;
  restoreMs: number;
  /** Where the restore's time went (the restore pipeline's adapters fill it in). */
  steps?: RestoreSteps;
}

/** A restore's time by step: what the runtime put in place first, its tool, what followed it; CRIU's own share. */
export interface RestoreSteps {
  /** Network namespace, packet hold, bundle: before the tool ran. */
  prepareMs: number;
  /** The runtime's restore command (runc restore, lxc-checkpoint -r, ...), CRIU included. */
  toolMs: number;
  /** After the tool: raised links, the state read back. */
  finishMs: number;
  /** CRIU's stats-restore, when it wrote one: its restore time (forking included). */
  criu?: { restoreMs: number; forkingMs: number; pagesRestored?: number };
}

export interface RuntimeAvailability {
  usable: boolean;
  reason?: string;
  version?: string;
}

/**
 * Runtimes whose containers are made from an image that the destination of a migration must hold too (Docker).
 * The migration engine asks the destination before the freeze and streams the image there when it lacks it.
 */
export interface RuntimeImages {
  /** The image the container was made from, as an id that names exactly that image. */
  imageOf(container: ContainerInfo): Promise<string>;
  has(image: string): Promise<boolean>;
  /** Writes the image as a tar (`docker save`) into `sink`, which stays open: the caller owns it. */
  save(image: string, sink: Writable): Promise<void>;
  /** Loads a tar that save() wrote; resolves once the runtime holds the image. */
  load(tar: Readable): Promise<void>;
  /** Removes an image (a failed migration's undo of load()); gone or still in use is not an error. */
  remove(image: string): Promise<void>;
  /**
   * The networks, by name, that the restore joins the container to again (Docker: a user network such as a macvlan
   * on the clients' LAN); the destination must have networks of those names. Absent: none.
   */
  networksOf?(container: ContainerInfo): Promise<string[]>;
  /** Of `names`, the networks this host lacks. */
  missingNetworks?(names: readonly string[]): Promise<string[]>;
}

export interface RuntimeAdapter {
  readonly name: RuntimeName;
  /** Present for runtimes whose containers need an image on the destination (see RuntimeImages). */
  readonly images?: RuntimeImages;
  /** What the runtime can restore; absent means everything CRIU can (runc). */
  readonly features?: {
    readonly lazyPages: boolean;
    /** Incremental checkpoints (`preDump`, `parentImage`) for CRIU pre-copy; absent means yes. */
    readonly preDump?: boolean;
    /** restore() takes `relocate`: a rootfs and bind mount sources copied to other places; absent means no. */
    readonly relocatablePaths?: boolean;
  };
  availability(): Promise<RuntimeAvailability>;
  list(): Promise<ContainerInfo[]>;
  /** Throws ERR_RUNTIME_NOT_FOUND (hint: `ferry ps`) when there is no such container. */
  inspect(id: string): Promise<ContainerInfo>;
  /** Refuses up front (ERR_PRECHECK_*) configurations CRIU cannot dump, before anything is frozen. */
  preflight(container: ContainerInfo): Promise<void>;
  checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult>;
  restore(options: RestoreOptions): Promise<RestoreResult>;
  /** Stops and removes a container (after a migration committed, or to clean a failed restore). */
  remove(id: string): Promise<void>;
  /** Freezes every task of the container (cgroup freezer); the migration's hold. */
  pause(id: string): Promise<void>;
  /** Thaws a paused container; the migration's rollback. */
  resume(id: string): Promise<void>;
  /**
   * Cuts the container's network while it is frozen for a move, so the source kernel does not answer its clients
   * after the checkpoint. Resolves with what it did as a plain-JSON FenceRecord (to be journaled) that also carries a
   * non-enumerable unfence() for this process's rollback. Throws with the network as it was. `known`: the caller's
   * earlier read of the container (a runtime may take its pid, bundle and interfaces instead of asking again while
   * clients wait).
   */
  fenceNetwork(id: string, known?: KnownContainer): Promise<Fence>;
  /**
   * Lifts a fence from its record, in this or any other process (a recovery reading a journal). Idempotent: a fence
   * already lifted, or whose namespace or links are gone, is not an error.
   */
  unfenceNetwork(record: FenceRecord): Promise<void>;
  /** The commands an operator runs by hand to thaw or to remove the container (quoted in hints; never executed). */
  manualCommands(name: string): { thaw: string; remove: string };
  /**
   * Plugs in what restore({ holdNetwork }) held back, delivering held packets. Idempotent; the hold survives the
   * process that restored (then what it had queued is gone, and TCP retransmits it).
   */
  releaseNetwork?(name: string): Promise<NetworkRelease | void>;
  /**
   * Before the freeze, on the source: what the destination needs to make the container's network namespace ahead
   * of the restore (prepareNetwork); undefined when the container has none of its own to re-create.
   */
  networkOf?(id: string): Promise<NetworkSpec | undefined>;
  /**
   * Before the freeze, on the destination: makes the namespace restore() would make for `name`, links down and its
   * traffic held, so that the frozen restore only joins it. remove(name) removes it (also when no restore came).
   */
  prepareNetwork?(name: string, spec: NetworkSpec, readdress?: Readonly<Record<string, string>>): Promise<PrepareNetworkResult>;
  /**
   * On the destination, once the source is fenced: brings the prepared namespace's links up behind its packet hold,
   * so that what clients send from the fence on waits in the hold instead of being lost (they would otherwise wait
   * for their retransmission timers after the restore). Never without a hold: the namespace has no sockets yet, and
   * its kernel would reset the clients' connections. remove(name) takes it down with the copy.
   */
  raisePreparedNetwork?(name: string): Promise<RaiseNetworkResult>;
  /** What ties the container to its network identity: its addresses and its established TCP connections. */
  networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }>;
}

export interface RaiseNetworkResult {
  raised: boolean;
  /** Why not (no namespace prepared, no hold, nothing to raise): the restore raises it, or the release does. */
  reason?: string;
}

/** What releaseNetwork() let go. */
export interface NetworkRelease {
  /** Packets held while the copy was restored and committed, delivered in arrival order at the release. */
  heldInbound: number;
  heldOutbound: number;
  /** From release() to the kernel's verdict on every held packet. */
  verdictMs?: number;
  /** The hold belonged to a process that died: its rules were removed ('gone': the namespace with them). */
  lifted?: 'removed' | 'gone';
  /** Why nothing was held (the bridge ends stayed down until the release instead). */
  notHeld?: string;
}

/** A container's own network namespace as the source sees it: the path its config names and its interfaces. */
export interface NetworkSpec {
  nsPath: string;
  interfaces: NetnsInterface[];
}

export interface PrepareNetworkResult {
  /** False when there is nothing to make here (the path exists on this host: the restore joins it). */
  prepared: boolean;
  /** Whether its traffic is held (else its bridge ends stay down until the release). */
  held?: boolean;
  reason?: string;
}
