/**
 * ferry-container.json: what a runtime adapter writes next to CRIU's images at checkpoint, because neither CRIU nor
 * the runtime keep it with the images and a restore (here or on another host) needs it. One record type for every
 * runtime: the common part (name, CRIU flags of the dump, which a restore repeats) and the runtime's own extras
 * (runc: bundle, config.json, network namespace; LXC: lxcpath, directory, config; Docker: image and create options),
 * told apart by `runtime`. The record may hold the container's environment: it is written 0600 into the 0700 image
 * directory, which already holds the container's whole memory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import type { RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';
import type { NetnsInterface } from './runc-netns';
import type { OciConfig } from './runc-state';

export const RECORD_FILE = 'ferry-container.json';
export const RECORD_FORMAT = 'ferry-container/1';

/** The CRIU flags of the dump; a restore repeats them unless told otherwise. */
export interface RecordedCriuFlags {
  tcpEstablished: boolean;
  fileLocks: boolean;
  extUnixSk: boolean;
  /** The dump left the tasks running (leaveRunning, or a pre-dump). */
  leaveRunning: boolean;
}

/** What only a runtime knows, by runtime. */
export interface RecordExtras {
  runc: {
    bundle: string;
    config: OciConfig;
    /** Absent when the container shares the host's network namespace (runc does not dump a joined one). */
    netns?: { path?: string; interfaces: NetnsInterface[] };
  };
  lxc: {
    lxcpath: string;
    /** LXCPATH/NAME: config and (for dir-backed containers) rootfs. */
    containerDir: string;
    /** The container's config file as it was at checkpoint. */
    configText: string;
    /** Interfaces that were fenced (down) for a move when dumped, to be brought up after the restore. */
    raiseLinks?: string[];
  };
  docker: {
    docker: {
      /** Id of the checkpointed container on the source (for messages only: a restore makes a new one). */
      containerId: string;
      /** Image id (sha256:...): a restore needs exactly this image, its files are what CRIU's images refer to. */
      imageId: string;
      /** The name the container was created from (Config.Image), when it names the same image. */
      imageName?: string;
      create: Dockerode.ContainerCreateOptions;
      /**
       * The writable layer: `files` paths the container added or changed, in the tar `tar` of the image directory;
       * `deleted` paths of the image it removed (not replayed on restore).
       */
      rootfsChanges?: { tar: string; files: number; deleted: string[] };
    };
  };
  podman: {
    podman: {
      /** Id of the checkpointed container on the source (for messages only: the import makes a new one). */
      containerId: string;
      /** Image id: the restore lays the root filesystem over exactly this image. */
      imageId: string;
      imageName?: string;
      /** The OCI spec Podman ran the container with (spec.dump of the import). */
      spec: OciConfig;
    };
  };
}

interface RecordBase<R extends RuntimeName> {
  format: typeof RECORD_FORMAT;
  runtime: R;
  /** The container's name in its runtime. */
  id: string;
  rootfs?: string;
  criu: RecordedCriuFlags;
  checkpointedAt: string;
}

/** The record of a checkpoint of a container of runtime R (any runtime when R is not given). */
export type CheckpointRecord<R extends RuntimeName = RuntimeName> = { [K in R]: RecordBase<K> & RecordExtras[K] }[R];

/** What a record of each runtime must hold to be read back (beyond format, runtime and id). */
const REQUIRED: { readonly [R in RuntimeName]: (value: Partial<CheckpointRecord<R>>) => boolean } = {
  runc: (v) => typeof v.config === 'object' && v.config !== null,
  lxc: (v) => typeof v.lxcpath === 'string' && typeof v.containerDir === 'string',
  docker: (v) => typeof v.docker?.create === 'object' && typeof v.docker.imageId === 'string',
  podman: (v) => typeof v.podman?.spec === 'object' && typeof v.podman.imageId === 'string',
};

/** Writes the record (0600) into `imagesDir`; returns its path. */
export function writeCheckpointRecord<R extends RuntimeName>(imagesDir: string, record: CheckpointRecord<R>): string {
  const path = join(imagesDir, RECORD_FILE);
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/**
 * The record in `imagesDir` of a `runtime` container; undefined when there is none. ERR_IMAGE_NOT_FOUND when it
 * cannot be read, ERR_IMAGE_CORRUPT when it is not JSON or not a record of that runtime (the hint names the runtime
 * that wrote it).
 */
export function readCheckpointRecord<R extends RuntimeName>(imagesDir: string, runtime: R): CheckpointRecord<R> | undefined {
  const found = readRecordJson(imagesDir);
  if (!found) return undefined;
  const value = found.value as Partial<CheckpointRecord<R>> | null;
  if (value?.format !== RECORD_FORMAT || value.runtime !== runtime || typeof value.id !== 'string' || !REQUIRED[runtime](value)) {
    const written = (found.value as { runtime?: unknown } | null)?.runtime;
    throw new FerryError('ERR_IMAGE_CORRUPT', `${found.path} is not a ${RECORD_FORMAT} record of a ${runtime} container`, {
      hint:
        typeof written === 'string' && written !== runtime
          ? `It was written for ${written}: restore it with --runtime ${written}.`
          : 'Restore images checkpointed by the same ferry version.',
      details: { path: found.path, format: value?.format, runtime: written },
    });
  }
  return value as CheckpointRecord<R>;
}

/** Which runtime wrote the images in `imagesDir`, if ferry did. For the CLI's `restore` default. */
export function recordedRuntime(imagesDir: string): RuntimeName | undefined {
  try {
    const runtime = (readRecordJson(imagesDir)?.value as { runtime?: unknown } | null | undefined)?.runtime;
    return runtime === 'runc' || runtime === 'lxc' || runtime === 'docker' || runtime === 'podman' ? runtime : undefined;
  } catch {
    return undefined;
  }
}

function readRecordJson(imagesDir: string): { path: string; value: unknown } | undefined {
  const path = join(imagesDir, RECORD_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { path, value: JSON.parse(text) as unknown };
  } catch (err) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
