/**
 * What `ferry checkpoint --export` and `ferry restore --import` add to their reports: the archive written or read,
 * what it does not carry, and how to restore it with Podman. Pure functions over the results.
 */
import type { ExportArchiveResult, PreparedImport } from '@ferry/core';
import { formatBytes } from './render-events';

export function renderExport(r: ExportArchiveResult): string {
  const lines = [
    `exported ${r.container} to ${r.file} (${formatBytes(r.bytes)}, checkpoint archive: ${r.imageFiles} CRIU image files, the whole rootfs)`,
    `  restore with  ferry restore --import ${r.file}`,
    `            or  podman container restore --import ${r.file}   (Podman needs the image ${r.rootfsImage}; docs/interop.md)`,
    ...r.notCarried.map((n) => `  not carried   ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function exportJson(r: ExportArchiveResult): Record<string, unknown> {
  return { file: r.file, bytes: r.bytes, rootfsImage: r.rootfsImage, imageFiles: r.imageFiles, notCarried: r.notCarried };
}

export function renderImport(p: PreparedImport): string {
  const from = p.rootfsSource === 'complete' ? 'the archive (complete rootfs)' : p.rootfsSource === 'dir' ? '--rootfs and rootfs-diff.tar' : `Podman's image ${p.rootfsImage} and rootfs-diff.tar`;
  const lines = [`  imported      into ${p.dir} (rootfs from ${from})`, ...p.notCarried.map((n) => `  not carried   ${n}`)];
  return `${lines.join('\n')}\n`;
}

export function importJson(p: PreparedImport): Record<string, unknown> {
  return { dir: p.dir, bundle: p.bundle, rootfsSource: p.rootfsSource, ...(p.rootfsImage ? { rootfsImage: p.rootfsImage } : {}), compression: p.compression, notCarried: p.notCarried };
}
