/**
 * Writing a checkpoint archive (archive-layout.ts) from an image directory ferry wrote: `ferry checkpoint --export`,
 * and any other image directory of a runc container (a snapshot); a Podman container's goes through
 * export-podman-archive.ts. Podman restores the result with
 * `podman container restore --import` (tested with Podman 4.3), ferry with `ferry restore --import`.
 *
 * Contract: reads imagesDir and the container's root filesystem, writes only `file` (atomically: a failure leaves no
 * file) and a staging directory beside it that is removed before returning. Throws ERR_PRECHECK_UNSUPPORTED_CONFIG for
 * images the format cannot carry (LXC, Docker, an incremental image with a parent), ERR_IMAGE_NOT_FOUND when there is
 * no record or rootfs.
 */
import { accessSync, constants, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { readCheckpointRecord, recordedRuntime, RECORD_FILE, type CheckpointRecord } from '../runtime/checkpoint-record';
import { isBindMount, networkNamespaceOf, rootfsOf } from '../runtime/runc-state';
import {
  buildConfigDump,
  buildNetworkStatus,
  buildSpecDump,
  CHECKPOINT_DIR,
  CONFIG_DUMP,
  DEFAULT_ROOTFS_IMAGE,
  DUMP_LOG,
  NETWORK_STATUS,
  ROOTFS_DIFF_TAR,
  SPEC_DUMP,
  STATS_DUMP,
} from './archive-layout';
import { packRootfs, type RootfsTools } from './archive-rootfs';
import { writeArchive, type ArchiveMember } from './archive-tar';
import { writePodmanCheckpointArchive } from './export-podman-archive';

/** Files of a ferry image directory that are logs of later runs, not part of the checkpoint. */
const NOT_IMAGES = new Set([DUMP_LOG, STATS_DUMP, 'ferry-snapshot.json', 'restore.log', 'stats-restore', 'runc-restore.log', 'lazy-status', 'runc-checkpoint.log']);

export interface ExportArchiveOptions {
  imagesDir: string;
  file: string;
  /** The image Podman lays rootfs-diff.tar over (default DEFAULT_ROOTFS_IMAGE: an empty one). */
  rootfsImage?: string;
  tools: Pick<RootfsTools, 'tarPath'>;
}

export interface ExportArchiveResult {
  file: string;
  bytes: number;
  container: string;
  rootfsImage: string;
  /** CRIU image files in checkpoint/. */
  imageFiles: number;
  /** What the archive does not carry, in words (docs/interop.md explains each). */
  notCarried: string[];
}

const WHY_NOT: Record<string, string> = {
  lxc: 'an LXC checkpoint is made by lxc-checkpoint against LXC\'s own config and mount tree; the archive carries an OCI runtime spec (spec.dump) that must describe the mounts CRIU dumped, and an LXC container has none',
  docker:
    "ferry's Docker checkpoints record Docker's create options, not the OCI spec containerd's runc ran the container with, and spec.dump must be that spec (it describes the mounts CRIU dumped)",
};

/**
 * Refuses (ERR_PRECHECK_BAD_INPUT) an archive path that cannot be written: its directory missing or not writable, or
 * the path itself a directory. Checked before the checkpoint, so nothing is frozen for an export that cannot happen.
 */
export function assertExportTarget(file: string): void {
  const path = resolve(file);
  const bad = (why: string) =>
    new FerryError('ERR_PRECHECK_BAD_INPUT', `cannot write the checkpoint archive ${path}: ${why}`, { hint: 'Name a file in an existing, writable directory.' });
  try {
    if (statSync(path).isDirectory()) throw bad('it is a directory');
  } catch (err) {
    if (err instanceof FerryError) throw err;
  }
  try {
    accessSync(dirname(path), constants.W_OK);
    if (!statSync(dirname(path)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw bad(`${dirname(path)}: ${(err as Error).message}`);
  }
}

/** The archive's members (and the staging files they come from) for a runc image directory. */
export async function writeCheckpointArchive(options: ExportArchiveOptions): Promise<ExportArchiveResult> {
  const imagesDir = resolve(options.imagesDir);
  const file = resolve(options.file);
  assertExportTarget(file);
  if (recordedRuntime(imagesDir) === 'podman') return writePodmanCheckpointArchive(imagesDir, file);
  const record = runcRecordOf(imagesDir);
  const rootfs = record.rootfs ?? rootfsOf(record.config, record.bundle);
  if (!rootfs || !existsSync(rootfs) || !statSync(rootfs).isDirectory()) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `the root filesystem of ${record.id} (${rootfs ?? 'not recorded'}) is not on this host`, {
      hint: 'Export on the host where the container was checkpointed; the archive carries the rootfs.',
      details: { rootfs },
    });
  }
  const imageFiles = imageFilesOf(imagesDir);
  const rootfsImage = options.rootfsImage ?? DEFAULT_ROOTFS_IMAGE;
  const checkpointedAt = new Date(record.checkpointedAt);
  const spec = buildSpecDump(record.config);
  const config = buildConfigDump({
    name: record.id,
    spec,
    rootfsImage,
    ownNetns: networkNamespaceOf(record.config)?.path !== undefined,
    createdAt: checkpointedAt,
    checkpointedAt,
  });
  const staging = mkdtempSync(join(dirname(file), '.ferry-export-'));
  try {
    const diff = join(staging, ROOTFS_DIFF_TAR);
    await packRootfs({ tarPath: options.tools.tarPath, cpPath: '' }, rootfs, diff);
    const json = (name: string, value: unknown) => {
      const path = join(staging, name);
      writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
      return { name, path };
    };
    const members: ArchiveMember[] = [
      json(CONFIG_DUMP, config),
      json(SPEC_DUMP, spec),
      json(NETWORK_STATUS, buildNetworkStatus(record.netns?.interfaces ?? [])),
      { name: ROOTFS_DIFF_TAR, path: diff },
    ];
    for (const log of [DUMP_LOG, STATS_DUMP]) {
      if (existsSync(join(imagesDir, log))) members.push({ name: log, path: join(imagesDir, log) });
    }
    for (const name of imageFiles) members.push({ name: `${CHECKPOINT_DIR}/${name}`, path: join(imagesDir, name) });
    const { bytes } = await writeArchive(file, members);
    return { file, bytes, container: record.id, rootfsImage, imageFiles: imageFiles.length, notCarried: notCarried(record) };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Refuses, before anything is checkpointed, runtimes whose checkpoints the archive cannot carry (ERR_PRECHECK_UNSUPPORTED_CONFIG
 * with the reason).
 */
export function assertExportable(runtime: string): void {
  if (runtime !== 'runc' && runtime !== 'podman') {
    throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `a ${runtime} checkpoint cannot be written as a checkpoint archive: ${WHY_NOT[runtime] ?? 'ferry has no spec.dump for it'}`, {
      hint: runtime === 'docker' ? 'Move Docker containers with `ferry migrate`, or keep the image directory (`ferry checkpoint` without --export).' : 'Keep the image directory (`ferry checkpoint` without --export) and restore it with ferry.',
      details: { runtime },
    });
  }
}

/** The runc record of imagesDir; a precise refusal for the runtimes the format cannot carry. */
function runcRecordOf(imagesDir: string): CheckpointRecord<'runc'> {
  const runtime = recordedRuntime(imagesDir);
  if (runtime) assertExportable(runtime);
  const record = readCheckpointRecord(imagesDir, 'runc');
  if (!record) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} has no ${RECORD_FILE}: ferry cannot tell which container's spec and rootfs to write`, {
      hint: 'Export an image directory written by `ferry checkpoint` of a runc container.',
    });
  }
  return record;
}

/** The CRIU image files to carry; refuses a directory that depends on a parent image (the archive must stand alone). */
function imageFilesOf(imagesDir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(imagesDir).sort()) {
    if (NOT_IMAGES.has(name) || name === RECORD_FILE) continue;
    const st = lstatSync(join(imagesDir, name));
    if (!st.isFile()) {
      throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `${imagesDir} holds ${name}, which is not a regular file${name === 'parent' ? ' (an incremental image: it needs its parent)' : ''}`, {
        hint: 'Export a full checkpoint: `ferry checkpoint CT --export FILE` takes one without a parent.',
        details: { entry: name },
      });
    }
    files.push(name);
  }
  if (!files.includes('inventory.img')) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} holds no CRIU inventory.img: it is not a complete checkpoint`, {
      hint: 'Checkpoint the container again.',
    });
  }
  // The record goes along (Podman ignores it; ferry's import reads the flags of the dump from it).
  files.push(RECORD_FILE);
  return files;
}

function notCarried(record: CheckpointRecord<'runc'>): string[] {
  const out: string[] = [];
  const binds = (record.config.mounts ?? []).filter(isBindMount);
  if (binds.length > 0) {
    out.push(`host bind mounts (their sources must exist on the restoring host): ${binds.map((m) => `${m.source} -> ${m.destination}`).join(', ')}`);
  }
  if (record.netns?.interfaces.some((i) => i.ifname !== 'lo' && i.addresses.length > 0)) {
    out.push('network addresses for Podman (written to network.status; Podman gives the container a fresh namespace with lo only; ferry re-creates them)');
  }
  return out;
}
