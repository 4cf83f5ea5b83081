/**
 * `ferry checkpoint --export` of a Podman container: the image directory ferry wrote already holds what Podman's own
 * `podman container checkpoint --export` puts in the archive (CRIU's images, the spec Podman ran the container with,
 * the writable layer as a tar over the container's image), so the archive is the one a Podman restore imports
 * (podman-restore.ts), named after the container and written to `file`. rootfsImage is the container's own image:
 * Podman on the restoring host must hold it (or pull it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readCheckpointRecord, RECORD_FILE } from '../runtime/checkpoint-record';
import { podmanArchiveMembers } from '../runtime/podman-restore';
import { FerryError } from '../model/ferry-error';
import { writeArchive } from './archive-tar';
import type { ExportArchiveResult } from './export-archive';

export async function writePodmanCheckpointArchive(imagesDir: string, file: string): Promise<ExportArchiveResult> {
  const record = readCheckpointRecord(imagesDir, 'podman');
  if (!record) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} has no Podman ${RECORD_FILE}`, { hint: 'Export an image directory written by `ferry checkpoint` of a Podman container.' });
  }
  const staging = mkdtempSync(join(dirname(file), '.ferry-export-'));
  try {
    const members = podmanArchiveMembers(imagesDir, record.id, record, (member) => join(staging, member), { tcpEstablished: record.criu.tcpEstablished });
    const imageFiles = members.filter((m) => m.name.startsWith('checkpoint/')).length;
    if (!members.some((m) => basename(m.name) === 'inventory.img')) {
      throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} holds no CRIU inventory.img: it is not a complete checkpoint`, { hint: 'Checkpoint the container again.' });
    }
    // The record goes along (Podman ignores it; ferry's import reads the flags of the dump from it).
    members.push({ name: `checkpoint/${RECORD_FILE}`, path: join(imagesDir, RECORD_FILE) });
    const { bytes } = await writeArchive(file, members);
    const rootfsImage = record.podman.imageName ?? record.podman.imageId;
    return { file, bytes, container: record.id, rootfsImage, imageFiles, notCarried: notCarried(rootfsImage) };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function notCarried(image: string): string[] {
  return [`the container's image (${image}): the restoring host's Podman must hold it or be able to pull it`];
}
