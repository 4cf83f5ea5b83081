/**
 * Preparing a checkpoint archive (Podman's `checkpoint --export`, or ferry's) for a runc restore: unpack it, build a
 * bundle (rootfs and config.json) from spec.dump, the base image's files, rootfs-diff.tar and deleted.files, and write
 * the runc adapter's record next to the CRIU images. The caller then restores with RuntimeAdapter.restore() (`ferry
 * restore --import`) or starts copies (`ferry start --from FILE`).
 *
 * The base root filesystem, in this order (docs/interop.md says why):
 * 1. nothing, when spec.dump says rootfs-diff.tar is complete (ferry's own archives);
 * 2. the directory the operator names (`--rootfs DIR`): the image's files from anywhere (podman/docker export, an
 *    unpacked OCI image), exactly what rootfs-diff.tar was taken against;
 * 3. the image config.dump names, read through this host's Podman (`podman image mount`), which is what Podman's own
 *    import does (it creates the container's storage from that image).
 * Without any of them the import is refused: a rootfs-diff.tar alone is not a root filesystem.
 *
 * Layout of the import directory (0700, removed by the caller when the restore fails):
 *   checkpoint/  CRIU images + ferry-container.json      bundle/config.json, bundle/rootfs/
 *   userdata/    files for Podman's bind mounts (hosts, hostname, resolv.conf, .containerenv, shm/, volumes/NAME/)
 *   config.dump, spec.dump, network.status, dump.log ...  as unpacked
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createImageDir } from '../image/image-dir';
import { FerryError } from '../model/ferry-error';
import { writeCheckpointRecord, type CheckpointRecord } from '../runtime/checkpoint-record';
import { networkNamespaceOf, type OciConfig } from '../runtime/runc-state';
import {
  CHECKPOINT_DIR,
  CONFIG_DUMP,
  DELETED_FILES,
  interfacesFromNetworkStatus,
  isRootfsComplete,
  NETWORK_STATUS,
  parseConfigDump,
  parseDeletedFiles,
  parseSpecDump,
  ROOTFS_DIFF_TAR,
  SPEC_DUMP,
  VOLUMES_DIR,
} from './archive-layout';
import { copyRootfs, extractTarInto, removeDeletedFiles, withPodmanImage, type RootfsTools } from './archive-rootfs';
import { readArchive, type Compression } from './archive-tar';
import { planImportMounts, type MountSources } from './import-mounts';

/** runc's container ids, as the runc adapter accepts them. */
const RUNC_ID = /^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/;

export interface ImportArchiveOptions {
  file: string;
  /** The import directory; must not exist yet (or be empty). */
  dir: string;
  /** Name of the container; default: the archive's. */
  name?: string;
  /** Base root filesystem (the image's files) instead of asking Podman. */
  rootfs?: string;
  /** CRIU flags the restore repeats (Podman's archive does not say which the dump used). */
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  tools: RootfsTools & { zstdPath: string };
}

export interface PreparedImport {
  dir: string;
  imagesDir: string;
  bundle: string;
  name: string;
  /** Where the base rootfs came from. */
  rootfsSource: 'complete' | 'dir' | 'podman';
  rootfsImage?: string;
  compression: Compression;
  /** Archive members ferry did not use, and facts of the original it cannot reproduce. */
  notCarried: string[];
}

/**
 * Unpacks and prepares; see the file comment. Throws ERR_IMAGE_* for unreadable or incomplete archives,
 * ERR_PRECHECK_* for archives ferry cannot restore (a pod's container, missing bind-mount sources), and leaves `dir`
 * to the caller to remove in every case.
 */
export async function prepareArchiveImport(options: ImportArchiveOptions): Promise<PreparedImport> {
  const dir = resolve(options.dir);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the import directory ${dir} is not empty`, { hint: 'Name a new directory with --dir.' });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  createImageDir(dir);
  const unpacked = await readArchive(resolve(options.file), dir, options.tools);
  const config = readJson(dir, CONFIG_DUMP, parseConfigDump, true)!;
  const spec = readJson(dir, SPEC_DUMP, parseSpecDump, true)!;
  const imagesDir = join(dir, CHECKPOINT_DIR);
  if (!existsSync(join(imagesDir, 'inventory.img'))) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${options.file} holds no checkpoint/inventory.img: it is not a complete checkpoint`, {
      hint: 'Export the checkpoint again; pre-checkpoints (--pre-checkpoint) cannot be restored on their own.',
    });
  }
  createImageDir(imagesDir);
  if (config.pod) {
    throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `${config.name} was checkpointed in the pod ${config.pod}: its namespaces belong to the pod's infra container`, {
      hint: 'Restore it with `podman container restore --import FILE --pod POD`.',
    });
  }
  const name = options.name ?? config.name;
  if (!RUNC_ID.test(name)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${name}" cannot name a runc container`, { hint: 'Pass --name with letters, digits, _ + - . only.' });
  }

  // 1. The root filesystem.
  const bundle = join(dir, 'bundle');
  mkdirSync(bundle, { mode: 0o700 });
  const rootfs = join(bundle, 'rootfs');
  const image = config.rootfsImageName || config.rootfsImageID;
  let rootfsSource: PreparedImport['rootfsSource'];
  if (isRootfsComplete(spec)) {
    rootfsSource = 'complete';
    mkdirSync(rootfs, { mode: 0o755 });
  } else if (options.rootfs !== undefined) {
    rootfsSource = 'dir';
    await copyRootfs(options.tools, resolve(options.rootfs), rootfs);
  } else if (image) {
    rootfsSource = 'podman';
    await withPodmanImage(options.tools, image, (mounted) => copyRootfs(options.tools, mounted, rootfs));
  } else {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${options.file} names no image for its root filesystem`, { hint: 'Pass the base root filesystem with --rootfs DIR.' });
  }
  const notCarried: string[] = unpacked.skipped.map((m) => `archive member ${m} (not used by a runc restore)`);
  if (existsSync(join(dir, ROOTFS_DIFF_TAR))) {
    await extractTarInto(options.tools, join(dir, ROOTFS_DIFF_TAR), rootfs);
    rmSync(join(dir, ROOTFS_DIFF_TAR)); // applied; the rootfs holds it now
  }
  const deleted = readJson(dir, DELETED_FILES, parseDeletedFiles, false) ?? [];
  const { skipped } = removeDeletedFiles(rootfs, deleted);
  for (const path of skipped) notCarried.push(`deletion of ${path} (below a symlink in the rootfs: not followed)`);

  // 2. Bind mounts Podman made from its own files, and named volumes.
  const userdata = join(dir, 'userdata');
  mkdirSync(userdata, { mode: 0o700 });
  const mountPlan = planImportMounts({
    spec,
    config,
    sourceExists: existsSync,
    userdata,
    volumesDir: join(dir, VOLUMES_DIR),
    archiveDir: dir,
    hostResolvConf: readTextOr('/etc/resolv.conf', ''),
  });
  if (mountPlan.missing.length > 0) {
    throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `${config.name} bind-mounts host paths that are not on this host: ${mountPlan.missing.join(', ')}`, {
      hint: 'Create those paths here (CRIU restores the mounts, not their contents), then import again.',
      details: { missing: mountPlan.missing },
    });
  }
  await materialize(mountPlan.sources, options.tools);

  // 3. config.json and the runc adapter's record.
  const interfaces = interfacesFromNetworkStatus(readJson(dir, NETWORK_STATUS, (v) => v, false));
  const runcConfig = configForImport(spec, { rootfs, name, sources: mountPlan.sources, missingNetnsPath: join(dir, 'netns-is-made-at-restore'), netnsExists: existsSync });
  writeFileSync(join(bundle, 'config.json'), `${JSON.stringify(runcConfig, null, 2)}\n`, { mode: 0o600 });
  const ns = networkNamespaceOf(runcConfig);
  const record: CheckpointRecord<'runc'> = {
    format: 'ferry-container/1',
    runtime: 'runc',
    id: name,
    bundle,
    rootfs,
    config: runcConfig,
    ...(ns ? { netns: { ...(ns.path ? { path: ns.path } : {}), interfaces } } : {}),
    criu: { tcpEstablished: options.tcpEstablished === true, fileLocks: options.fileLocks !== false, extUnixSk: false, leaveRunning: false },
    checkpointedAt: typeof config.checkpointedTime === 'string' ? config.checkpointedTime : new Date().toISOString(),
  };
  writeCheckpointRecord(imagesDir, record);
  if (ns && !ns.path) notCarried.push("Podman's network settings (the namespace runc made is restored from CRIU's images as it was)");
  return {
    dir,
    imagesDir,
    bundle,
    name,
    rootfsSource,
    ...(rootfsSource === 'podman' && image ? { rootfsImage: image } : {}),
    compression: unpacked.compression,
    notCarried,
  };
}

/** spec.dump as runc's config.json for this import; see import-mounts.ts for the mounts. */
export function configForImport(spec: OciConfig, change: { rootfs: string; name: string; sources: MountSources; missingNetnsPath: string; netnsExists: (path: string) => boolean }): OciConfig {
  const config = structuredClone(spec);
  config.root = { path: change.rootfs, readonly: spec.root?.readonly === true };
  for (const mount of config.mounts ?? []) {
    const source = change.sources.get(mount.destination);
    if (source) mount.source = source.path;
  }
  if (config.linux) config.linux.cgroupsPath = `/ferry/${change.name}`;
  // A namespace path means CRIU dumped the namespace as external. When the path exists on this host (the archive
  // comes back to where it was made) the container joins it, as `ferry restore DIR` does; otherwise the runc adapter
  // makes a new one with the recorded addresses, so the path is pointed where nothing is.
  const ns = config.linux?.namespaces?.find((n) => n.type === 'network');
  if (ns?.path && !change.netnsExists(ns.path)) ns.path = change.missingNetnsPath;
  return config;
}

async function materialize(sources: MountSources, tools: RootfsTools): Promise<void> {
  for (const source of sources.values()) {
    if (source.kind === 'file') {
      writeFileSync(source.path, source.content, { mode: 0o644, flag: 'wx' });
      continue;
    }
    mkdirSync(source.path, { recursive: true, mode: source.mode });
    chmodSync(source.path, source.mode); // mkdir's mode passes through the umask; sticky /dev/shm needs 1777
    if (source.tar && existsSync(source.tar)) await extractTarInto(tools, source.tar, source.path);
  }
}

function readTextOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function readJson<T>(dir: string, name: string, parse: (v: unknown) => T, required: boolean): T | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new FerryError('ERR_IMAGE_CORRUPT', `the checkpoint archive has no ${name}`, { hint: 'Export the checkpoint again with Podman or ferry.' });
  }
  try {
    return parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `the checkpoint archive's ${name} is unusable: ${(err as Error).message}`, {
      hint: 'Export the checkpoint again with Podman or ferry.',
      cause: err,
    });
  }
}
