/**
 * ferry-container.json for Docker containers: what a restore (here or on another host) needs besides CRIU's images
 * and what Docker does not keep with them: the container's name, its image, the create options that make the same
 * container again, and the CRIU flags of the dump.
 *
 * The create options hold the environment: the file is 0600 inside the 0700 image directory, like runc's record.
 */
import type Dockerode from 'dockerode';
import { FerryError } from '../model/ferry-error';
import { readRecordFile, RECORD_FILE, RECORD_FORMAT, writeRecordFile } from './checkpoint-record';

export interface DockerCheckpointRecord {
  format: typeof RECORD_FORMAT;
  runtime: 'docker';
  /** The container's name. */
  id: string;
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
  criu: { tcpEstablished: boolean; fileLocks: boolean; extUnixSk: boolean; leaveRunning: boolean };
  checkpointedAt: string;
}

export function writeDockerRecord(imagesDir: string, record: DockerCheckpointRecord): void {
  writeRecordFile(imagesDir, record);
}

/** The record in `imagesDir`; ERR_IMAGE_NOT_FOUND when there is none, ERR_IMAGE_CORRUPT when it is not Docker's. */
export function readDockerRecord(imagesDir: string): DockerCheckpointRecord {
  const found = readRecordFile(imagesDir);
  if (!found) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} has no ${RECORD_FILE}: ferry cannot tell which Docker container to make`, {
      hint: 'Restore a directory written by `ferry checkpoint` of a Docker container.',
      details: { path: `${imagesDir}/${RECORD_FILE}` },
    });
  }
  const value = found.value as Partial<DockerCheckpointRecord> | null;
  const runtime = (found.value as { runtime?: unknown } | null)?.runtime;
  if (value?.format !== RECORD_FORMAT || value.runtime !== 'docker' || typeof value.id !== 'string' || !value.docker?.create || !value.docker.imageId) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${found.path} is not a ${RECORD_FORMAT} record of a Docker container`, {
      hint: typeof runtime === 'string' ? `It was written for ${runtime}: restore it with --runtime ${runtime}.` : 'Restore images checkpointed by the same ferry version.',
      details: { path: found.path, format: value?.format, runtime },
    });
  }
  return value as DockerCheckpointRecord;
}
