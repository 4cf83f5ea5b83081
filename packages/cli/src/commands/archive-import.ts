/**
 * The CLI side of reading a checkpoint archive (`ferry restore --import`, `ferry start --from FILE`): where the
 * import directory goes, and removing it again when what follows fails (the destination stays clean).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { archiveTools, prepareArchiveImport, type PreparedImport } from '@ferry/core';

export const DEFAULT_IMPORT_ROOT = '/var/lib/ferry/imports';

export interface ImportArgs {
  file: string;
  dir?: string;
  name?: string;
  rootfs?: string;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
}

/**
 * Prepares the import, runs `use` on it, and removes the import directory when either fails. On success the
 * directory stays: it holds the restored container's bundle and rootfs.
 */
export async function withImportedArchive<T>(args: ImportArgs, use: (prepared: PreparedImport) => Promise<T>): Promise<T> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = resolve(args.dir ?? `${DEFAULT_IMPORT_ROOT}/${args.name ?? 'import'}-${stamp}`);
  // prepareArchiveImport refuses a non-empty directory before writing: only what this call created is removed.
  const existed = existsSync(dir) && readdirSync(dir).length === 0;
  const refused = existsSync(dir) && !existed;
  try {
    const prepared = await prepareArchiveImport({
      file: resolve(args.file),
      dir,
      ...(args.name === undefined ? {} : { name: args.name }),
      ...(args.rootfs === undefined ? {} : { rootfs: args.rootfs }),
      ...(args.tcpEstablished === undefined ? {} : { tcpEstablished: args.tcpEstablished }),
      ...(args.fileLocks === undefined ? {} : { fileLocks: args.fileLocks }),
      tools: archiveTools(process.env.PATH ?? ''),
    });
    return await use(prepared);
  } catch (err) {
    if (existed) for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
    else if (!refused) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
