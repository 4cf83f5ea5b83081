/**
 * Small helpers the CLI uses around archives: telling an archive from an image directory, and finding the tools the
 * archive code runs (core never reads the environment: the caller passes its PATH).
 */
import { statSync } from 'node:fs';
import { findExecutable } from '../host/find-executable';
import type { RootfsTools } from './archive-rootfs';

/** True when `path` is a regular file (an archive); false for a directory (an image directory) or nothing. */
export function isCheckpointArchive(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export type ArchiveTools = RootfsTools & { zstdPath: string };

/** tar, cp and zstd from `searchPath` (their names when absent: the run then fails with a clear error), Podman if there. */
export function archiveTools(searchPath: string): ArchiveTools {
  const podmanPath = findExecutable('podman', searchPath);
  return {
    tarPath: findExecutable('tar', searchPath) ?? 'tar',
    cpPath: findExecutable('cp', searchPath) ?? 'cp',
    zstdPath: findExecutable('zstd', searchPath) ?? 'zstd',
    ...(podmanPath ? { podmanPath } : {}),
  };
}
