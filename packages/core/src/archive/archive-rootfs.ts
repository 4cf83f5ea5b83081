/**
 * The root filesystem side of a checkpoint archive: packing a container's rootfs into rootfs-diff.tar, and building a
 * rootfs for an import from a base (an empty directory, a directory the operator names, or the image Podman names,
 * read through `podman image mount`) plus rootfs-diff.tar and deleted.files.
 *
 * GNU tar does the rootfs work, with argv (never a shell): it keeps every file type a root filesystem holds (device
 * nodes, hard links, sockets' absence, xattrs) and, extracting, refuses `..` members and turns a symlink whose target
 * is absolute or climbs out into a placeholder until the end, so nothing is written through a link the archive made.
 */
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../model/ferry-error';

const run = promisify(execFile);
const MAX_BUFFER = 16 << 20;

export interface RootfsTools {
  tarPath: string;
  cpPath: string;
  /** Absent when Podman is not installed here. */
  podmanPath?: string;
  /** Environment of the podman commands (default: inherited), e.g. CONTAINERS_STORAGE_CONF for a private storage. */
  podmanEnv?: NodeJS.ProcessEnv;
}

async function tool(path: string, args: string[], what: string, hint: string, env?: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run(path, args, { maxBuffer: MAX_BUFFER, ...(env ? { env } : {}) });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number };
    const reason = e.code === 'ENOENT' ? `${path} not found` : (e.stderr ?? '').trim().split('\n').slice(-3).join('; ') || (err as Error).message;
    throw new FerryError('ERR_RUNTIME_FAILED', `${what} failed: ${reason}`, { hint, cause: err, details: { argv: [path, ...args] } });
  }
}

/** rootfs-diff.tar holding the whole of `rootfs` (owners as numbers, xattrs kept). */
export async function packRootfs(tools: RootfsTools, rootfs: string, tarFile: string): Promise<void> {
  await tool(
    tools.tarPath,
    ['--create', '--file', tarFile, '--numeric-owner', '--xattrs', '--sparse', '--directory', rootfs, '.'],
    `packing the root filesystem ${rootfs}`,
    'Check that the rootfs is readable and the target directory has room for a copy of it.',
  );
}

/** Lays a tar (rootfs-diff.tar, devshm-checkpoint.tar, a volume) over `dir` as Podman does: owners, modes and xattrs kept. */
export async function extractTarInto(tools: RootfsTools, tarFile: string, dir: string): Promise<void> {
  await tool(
    tools.tarPath,
    ['--extract', '--file', tarFile, '--directory', dir, '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*'],
    `unpacking ${tarFile} into ${dir}`,
    'The archive may be damaged: export it again.',
  );
}

/** Copies a base root filesystem (`cp -a`: owners, modes, links, xattrs) into `dest`, which must not exist yet. */
export async function copyRootfs(tools: RootfsTools, source: string, dest: string): Promise<void> {
  mkdirSync(dest, { mode: 0o755 });
  await tool(tools.cpPath, ['-a', '--', `${source}/.`, dest], `copying the base root filesystem ${source}`, 'Check the base rootfs and the space left.');
}

/**
 * The image's files as a directory, for as long as `use` runs: `podman image mount` (Podman's own storage, as its
 * configuration says: storage.conf, or CONTAINERS_STORAGE_CONF), unmounted afterwards whatever happens.
 */
export async function withPodmanImage<T>(tools: RootfsTools, image: string, use: (dir: string) => Promise<T>): Promise<T> {
  if (!tools.podmanPath) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `the archive's root filesystem is a diff against the image ${image}, and Podman is not installed here to read it`, {
      hint: 'Pass the image\'s files with --rootfs DIR (e.g. unpacked from `podman export` or `docker export` of a container of that image).',
      details: { image },
    });
  }
  const mounted = (
    await tool(tools.podmanPath, ['image', 'mount', '--', image], `podman image mount ${image}`, `Pull or load the image first (\`podman pull ${image}\`), or pass --rootfs DIR.`, tools.podmanEnv)
  ).trim();
  if (!mounted.startsWith('/')) {
    throw new FerryError('ERR_RUNTIME_FAILED', `podman image mount ${image} printed no path: ${JSON.stringify(mounted.slice(0, 200))}`);
  }
  try {
    return await use(mounted);
  } finally {
    await tool(tools.podmanPath, ['image', 'unmount', '--', image], `podman image unmount ${image}`, '', tools.podmanEnv).catch(() => undefined);
  }
}

/**
 * Removes the paths of deleted.files from `rootfs`. A path with `.`/`..` components, or one below a symlink (inside
 * the rootfs a link may point anywhere on the host), is skipped and returned: deleting through it could reach outside.
 */
export function removeDeletedFiles(rootfs: string, paths: readonly string[]): { removed: number; skipped: string[] } {
  let removed = 0;
  const skipped: string[] = [];
  for (const path of paths) {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0 || parts.some((p) => p === '.' || p === '..')) {
      skipped.push(path);
      continue;
    }
    let verdict: 'ok' | 'gone' | 'link' = 'ok';
    for (let i = 1; i < parts.length && verdict === 'ok'; i++) {
      try {
        if (!lstatSync(join(rootfs, ...parts.slice(0, i))).isDirectory()) verdict = 'link';
      } catch {
        verdict = 'gone'; // a parent is missing: nothing to delete
      }
    }
    if (verdict === 'gone') continue;
    if (verdict === 'link') {
      skipped.push(path);
      continue;
    }
    // rm never follows the link it removes, nor links below a directory it removes.
    rmSync(join(rootfs, ...parts), { recursive: true, force: true });
    removed++;
  }
  return { removed, skipped };
}
