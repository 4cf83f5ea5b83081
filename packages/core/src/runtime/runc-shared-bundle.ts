/**
 * A move with --shared-storage sends no bundle: the destination has an empty bundle directory and the images, whose
 * record (ferry-container.json) holds the config.json the container ran with. runc resolves a relative root.path
 * ("rootfs", as `runc spec` writes it) and relative bind sources against the directory of the config.json it is
 * given; against that empty directory they name nothing (`runc restore: invalid rootfs`). They are paths in the
 * source's bundle, which shared storage puts at the same place on this host.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assertRealDirectory, readFileNoFollow } from '../host/safe-files';
import { FerryError } from '../model/ferry-error';
import { readCheckpointRecord } from './checkpoint-record';
import { absoluteBundlePaths, type OciConfig } from './runc-state';

/**
 * Writes the recorded config.json into `bundleDir` when it has none (no bundle was copied), its bundle-relative paths
 * made absolute against the source's bundle, so that the restore and the cgroup fix-up read it like a copied one.
 * Returns the config written, or undefined when the bundle has its own config.json or the images no runc record.
 * ERR_PRECHECK_STORAGE_NOT_COPIED when the root it names is not a directory on this host (the storage is not shared).
 */
export function placeRecordedRuncConfig(bundleDir: string, imagesDir: string): OciConfig | undefined {
  assertRealDirectory(bundleDir);
  const file = join(bundleDir, 'config.json');
  if (readFileNoFollow(file) !== undefined) return undefined;
  const record = readCheckpointRecord(imagesDir, 'runc');
  if (!record || typeof record.bundle !== 'string') return undefined;
  const config = absoluteBundlePaths(record.config, resolve(record.bundle));
  const root = config.root?.path;
  if (root !== undefined && !isDirectory(root)) {
    throw new FerryError('ERR_PRECHECK_STORAGE_NOT_COPIED', `the root filesystem of runc container ${record.id} (${root}) is not on this host`, {
      hint: 'Without a copied bundle (--shared-storage) the bundle and its rootfs must be on storage this host sees at the same path as the source. Move it without --shared-storage to have ferry copy them.',
      details: { root, bundle: record.bundle },
    });
  }
  // 'wx': never through a file (or link) that appeared in the meantime.
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return config;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
