/**
 * The checkpoint archive that Podman and CRI-O exchange (`podman container checkpoint --export`, `podman container
 * restore --import`, the kubelet checkpoint API), as checkpointctl documents it (lib/metadata.go, lib/annotations.go):
 *
 *   config.dump        the engine's container config (Podman: libpod's ContainerConfig as JSON)
 *   spec.dump          the OCI runtime spec the container ran with
 *   network.status     per network, the container's interfaces, addresses and MACs (JSON; `null` without networks)
 *   checkpoint/        CRIU's images, with runc's descriptors.json
 *   rootfs-diff.tar    files the container added or changed, relative to its image
 *   deleted.files      JSON list of paths the container removed from its image
 *   devshm-checkpoint.tar, volumes/NAME.tar   /dev/shm and named volumes (Podman)
 *   dump.log, stats-dump                      CRIU's log and statistics of the dump
 *
 * This file holds the names, the JSON shapes ferry writes and reads, and the pure conversions between them and ferry's
 * own records (unit-tested). Reading and writing the tar is archive-tar.ts; docs/interop.md lists every field.
 */
import { randomBytes } from 'node:crypto';
import type { NetworkAddress } from '../model/container';
import type { NetnsInterface } from '../runtime/runc-netns';
import type { OciConfig } from '../runtime/runc-state';

export const CONFIG_DUMP = 'config.dump';
export const SPEC_DUMP = 'spec.dump';
export const NETWORK_STATUS = 'network.status';
export const CHECKPOINT_DIR = 'checkpoint';
export const ROOTFS_DIFF_TAR = 'rootfs-diff.tar';
export const DELETED_FILES = 'deleted.files';
export const DEVSHM_TAR = 'devshm-checkpoint.tar';
export const VOLUMES_DIR = 'volumes';
export const DUMP_LOG = 'dump.log';
export const STATS_DUMP = 'stats-dump';

/** Top-level files ferry reads from an archive; anything else is skipped (and reported as not carried). */
export const TOP_LEVEL_FILES: readonly string[] = [CONFIG_DUMP, SPEC_DUMP, NETWORK_STATUS, ROOTFS_DIFF_TAR, DELETED_FILES, DEVSHM_TAR, DUMP_LOG, STATS_DUMP];
/** Top-level directories whose regular files ferry reads (one level deep). */
export const TOP_LEVEL_DIRS: readonly string[] = [CHECKPOINT_DIR, VOLUMES_DIR];

/**
 * spec.dump annotation ferry adds to archives it writes: rootfs-diff.tar then holds the container's whole root
 * filesystem, not a diff against an image, so a restore needs no base image (ferry's own import relies on it; Podman
 * ignores it and lays the tar over the image config.dump names).
 */
export const ROOTFS_COMPLETE_ANNOTATION = 'io.ferry.rootfs-diff';
export const ROOTFS_COMPLETE_VALUE = 'complete';

/**
 * The image Podman lays rootfs-diff.tar over when the operator names none. It must exist on the Podman host:
 * an empty image whose root directory is 0755 (CRIU checks the root's mode on restore). docs/interop.md has the
 * one-line recipe.
 */
export const DEFAULT_ROOTFS_IMAGE = 'localhost/ferry-empty:latest';

/** The annotations of the checkpoint image form (checkpointctl lib/annotations.go), for reference and docs. */
export const CHECKPOINT_IMAGE_ANNOTATIONS = {
  engine: 'org.criu.checkpoint.engine.name',
  engineVersion: 'org.criu.checkpoint.engine.version',
  containerName: 'org.criu.checkpoint.container.name',
  rootfsImageName: 'org.criu.checkpoint.rootfsImageName',
  rootfsImageId: 'org.criu.checkpoint.rootfsImageID',
  runtimeName: 'org.criu.checkpoint.runtime.name',
  criuVersion: 'org.criu.checkpoint.criu.version',
  hostArch: 'org.criu.checkpoint.host.arch',
  hostKernel: 'org.criu.checkpoint.host.kernel',
} as const;

/** The fields of Podman's config.dump ferry writes or reads (libpod ContainerConfig JSON names, Podman 4.3). */
export interface ConfigDump {
  id: string;
  name: string;
  rootfsImageID?: string;
  rootfsImageName?: string;
  RawImageName?: string;
  /** Podman makes a network namespace (with a path) for the container before the restore. */
  createNetNS?: boolean;
  command?: string[];
  stopSignal?: number;
  stopTimeout?: number;
  createdTime?: string;
  /** checkpointctl's field; Podman 4.3 neither writes nor reads it. */
  checkpointedTime?: string;
  runtime?: string;
  logDriver?: string;
  idMappingsOptions?: { HostUIDMapping: boolean; HostGIDMapping: boolean };
  namedVolumes?: { volumeName: string; dest: string; options?: string[] }[];
  pod?: string;
  spec?: OciConfig;
  [key: string]: unknown;
}

/** network.status: Podman's map of network name to its status block (libnetwork types.StatusBlock). */
export type NetworkStatus = Record<string, { interfaces?: Record<string, { subnets?: { ipnet: string; gateway?: string }[]; mac_address?: string }> }>;

/** The network name ferry files its interfaces under in network.status (Podman restores no network of that name). */
export const FERRY_NETWORK = 'ferry';

export interface ConfigDumpInput {
  name: string;
  spec: OciConfig;
  rootfsImage: string;
  /** The container has its own network namespace (with a path): Podman must make one for the restore. */
  ownNetns: boolean;
  createdAt: Date;
  checkpointedAt: Date;
  /** 64 hex digits; random when absent. */
  id?: string;
}

/**
 * config.dump for Podman's import. Podman pulls `rootfsImageName` when missing and creates the container's storage
 * from `rootfsImageID`; both hold the image's NAME, because an id is local to one host's storage (Podman's
 * storage reference parser takes a name there too, verified with Podman 4.3). Networks are not declared: Podman's
 * restore then gives the container a fresh namespace with only lo (createNetNS) or none at all, like `--network none`.
 */
export function buildConfigDump(input: ConfigDumpInput): ConfigDump {
  return {
    id: input.id ?? randomBytes(32).toString('hex'),
    name: input.name,
    rootfsImageID: input.rootfsImage,
    rootfsImageName: input.rootfsImage,
    RawImageName: input.rootfsImage,
    createNetNS: input.ownNetns,
    command: input.spec.process?.args ?? [],
    stopSignal: 15,
    stopTimeout: 10,
    createdTime: input.createdAt.toISOString(),
    checkpointedTime: input.checkpointedAt.toISOString(),
    runtime: 'runc',
    logDriver: 'k8s-file',
    idMappingsOptions: { HostUIDMapping: true, HostGIDMapping: true },
    spec: input.spec,
  };
}

/**
 * spec.dump from the config.json a runc container ran with: the same spec, marked as carrying a complete root
 * filesystem. The rootfs path and the network namespace path are left as they were: both importers replace them
 * (Podman with its storage mount and its own namespace, ferry with the import's bundle and a re-created namespace).
 */
export function buildSpecDump(config: OciConfig): OciConfig {
  const spec = structuredClone(config);
  spec.annotations = { ...(spec.annotations ?? {}), [ROOTFS_COMPLETE_ANNOTATION]: ROOTFS_COMPLETE_VALUE };
  return spec;
}

/** network.status for the interfaces ferry recorded; `null` (Podman's own value) when there are none. */
export function buildNetworkStatus(interfaces: readonly NetnsInterface[]): NetworkStatus | null {
  const withAddresses = interfaces.filter((i) => i.ifname !== 'lo');
  if (withAddresses.length === 0) return null;
  const block: NetworkStatus[string] = { interfaces: {} };
  for (const iface of withAddresses) {
    block.interfaces![iface.ifname] = {
      subnets: iface.addresses.map((a) => ({ ipnet: a.address })),
      ...(iface.mac ? { mac_address: iface.mac } : {}),
    };
  }
  return { [FERRY_NETWORK]: block };
}

/**
 * The interfaces to re-create from network.status (any network's; an interface named twice keeps its first entry).
 * Gateways are not routes ferry can replay without the network's definition: dropped (docs/interop.md).
 */
export function interfacesFromNetworkStatus(status: unknown): NetnsInterface[] {
  if (!status || typeof status !== 'object' || Array.isArray(status)) return [];
  const seen = new Map<string, NetnsInterface>();
  for (const block of Object.values(status as Record<string, unknown>)) {
    const interfaces = (block as { interfaces?: unknown } | null)?.interfaces;
    if (!interfaces || typeof interfaces !== 'object') continue;
    for (const [ifname, value] of Object.entries(interfaces as Record<string, unknown>)) {
      if (seen.has(ifname) || !/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) continue;
      const entry = value as { subnets?: unknown; mac_address?: unknown } | null;
      const subnets = Array.isArray(entry?.subnets) ? entry.subnets : [];
      const addresses: NetworkAddress[] = [];
      for (const subnet of subnets) {
        const ipnet = (subnet as { ipnet?: unknown } | null)?.ipnet;
        if (typeof ipnet !== 'string' || !/^[0-9A-Fa-f:.]+\/\d{1,3}$/.test(ipnet)) continue;
        addresses.push({ ifname, family: ipnet.includes(':') ? 'inet6' : 'inet', address: ipnet });
      }
      const mac = typeof entry?.mac_address === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(entry.mac_address) ? entry.mac_address : undefined;
      seen.set(ifname, { ifname, ...(mac ? { mac } : {}), addresses });
    }
  }
  return [...seen.values()];
}

/** What an importer needs from config.dump, checked; throws a message (the caller wraps it) when unusable. */
export function parseConfigDump(value: unknown): ConfigDump {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('config.dump is not a JSON object');
  const dump = value as ConfigDump;
  if (typeof dump.name !== 'string' || dump.name === '') throw new Error('config.dump has no container name');
  for (const key of ['rootfsImageID', 'rootfsImageName', 'pod'] as const) {
    if (dump[key] !== undefined && typeof dump[key] !== 'string') throw new Error(`config.dump: ${key} is not a string`);
  }
  if (dump.namedVolumes !== undefined && !Array.isArray(dump.namedVolumes)) throw new Error('config.dump: namedVolumes is not a list');
  return dump;
}

/** spec.dump, checked for the parts an import rewrites. */
export function parseSpecDump(value: unknown): OciConfig {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('spec.dump is not a JSON object');
  const spec = value as OciConfig;
  if (spec.mounts !== undefined && !Array.isArray(spec.mounts)) throw new Error('spec.dump: mounts is not a list');
  if (spec.linux?.namespaces !== undefined && !Array.isArray(spec.linux.namespaces)) throw new Error('spec.dump: linux.namespaces is not a list');
  if (spec.process?.terminal === true) throw new Error('spec.dump: the container has a terminal, which CRIU cannot restore without its console');
  return spec;
}

/** deleted.files: a JSON list of absolute paths inside the container. */
export function parseDeletedFiles(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error('deleted.files is not a JSON list of paths');
  return value as string[];
}

export function isRootfsComplete(spec: OciConfig): boolean {
  return spec.annotations?.[ROOTFS_COMPLETE_ANNOTATION] === ROOTFS_COMPLETE_VALUE;
}
