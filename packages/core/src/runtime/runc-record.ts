/**
 * ferry-container.json: what the runc adapter writes next to CRIU's images at checkpoint, because neither CRIU nor
 * runc keep it and a restore on another host needs it: the container's name, bundle and config.json, its network
 * namespace (path and addresses: runc does not dump a joined netns), and the CRIU flags of the dump (a restore must
 * repeat --tcp-established and friends).
 *
 * The file holds config.json, environment included: it is written 0600 into the image directory, which is 0700 and
 * already holds the container's whole memory.
 */
import { FerryError } from '../model/ferry-error';
import { readRecordFile, RECORD_FORMAT, writeRecordFile } from './checkpoint-record';
import type { NetnsInterface } from './runc-netns';
import type { OciConfig } from './runc-state';

export { RECORD_FILE, RECORD_FORMAT } from './checkpoint-record';

export interface CheckpointRecord {
  format: typeof RECORD_FORMAT;
  runtime: 'runc';
  id: string;
  bundle: string;
  rootfs?: string;
  config: OciConfig;
  /** Absent when the container shares the host's network namespace. */
  netns?: { path?: string; interfaces: NetnsInterface[] };
  criu: { tcpEstablished: boolean; fileLocks: boolean; extUnixSk: boolean; leaveRunning: boolean };
  checkpointedAt: string;
}

export function writeCheckpointRecord(imagesDir: string, record: CheckpointRecord): string {
  return writeRecordFile(imagesDir, record);
}

/** The record in `imagesDir`, or undefined when there is none (images not made by the runc adapter). */
export function readCheckpointRecord(imagesDir: string): CheckpointRecord | undefined {
  const found = readRecordFile(imagesDir);
  if (!found) return undefined;
  const value = found.value as Partial<CheckpointRecord> | null;
  if (value?.format !== RECORD_FORMAT || value.runtime !== 'runc' || typeof value.id !== 'string' || !value.config) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${found.path} is not a ${RECORD_FORMAT} record of a runc container`, {
      hint: 'Restore images checkpointed by the same ferry version, or pass the bundle explicitly.',
      details: { path: found.path, format: value?.format },
    });
  }
  return value as CheckpointRecord;
}
