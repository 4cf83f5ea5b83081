/**
 * ferry-container.json for LXC images: what the LXC adapter writes next to CRIU's images, because liblxc keeps none
 * of it with the images and a restore elsewhere needs it: the container's name, lxcpath, directory and config text,
 * and the CRIU options of the dump (a restore must repeat --tcp-established and friends).
 * Same file name and format tag as the runc record (runc-record.ts); `runtime` tells them apart.
 * Written 0600 into the 0700 image directory (the config may hold environment values).
 */
import { FerryError } from '../model/ferry-error';
import { readRecordFile, RECORD_FORMAT, writeRecordFile } from './checkpoint-record';

export interface LxcCheckpointRecord {
  format: typeof RECORD_FORMAT;
  runtime: 'lxc';
  id: string;
  lxcpath: string;
  /** LXCPATH/NAME: config and (for dir-backed containers) rootfs. */
  containerDir: string;
  rootfs?: string;
  /** The container's config file as it was at checkpoint. */
  configText: string;
  criu: { tcpEstablished: boolean; fileLocks: boolean; extUnixSk: boolean; leaveRunning: boolean };
  /** Interfaces that were fenced (down) for a move when dumped, to be brought up after the restore. */
  raiseLinks?: string[];
  checkpointedAt: string;
}

export function writeLxcRecord(imagesDir: string, record: LxcCheckpointRecord): string {
  return writeRecordFile(imagesDir, record);
}

/** The record in `imagesDir`; undefined when there is none; ERR_IMAGE_CORRUPT when it is not an LXC record. */
export function readLxcRecord(imagesDir: string): LxcCheckpointRecord | undefined {
  const found = readRecordFile(imagesDir);
  if (!found) return undefined;
  const value = found.value as Partial<LxcCheckpointRecord> | null;
  if (value?.format !== RECORD_FORMAT || value.runtime !== 'lxc' || typeof value.id !== 'string' || typeof value.lxcpath !== 'string') {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${found.path} is not a ${RECORD_FORMAT} record of an LXC container`, {
      hint: 'Restore it with the runtime that checkpointed it (`ferry restore DIR --runtime runc`).',
      details: { path: found.path, format: value?.format, runtime: value?.runtime },
    });
  }
  return value as LxcCheckpointRecord;
}
