/**
 * A restored container must not land in a cgroup that is busy on this host: runc would put the restored tasks into
 * the cgroup of whatever runs there (on hosts that share a cgroup tree, like the sandbox hosts, that is the frozen
 * source itself). When the bundle's cgroupsPath is occupied, a fresh sibling path is used instead.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, assertRealDirectory, readFileNoFollow, replaceFileNoFollow } from '@ferry/core';

export function occupied(cgroupRoots: readonly string[], cgroupsPath: string): boolean {
  return cgroupRoots.some((root) => {
    try {
      return readFileSync(join(root, cgroupsPath, 'cgroup.procs'), 'utf8').trim().length > 0;
    } catch {
      return false;
    }
  });
}

/**
 * Rewrites config.json's linux.cgroupsPath when needed; returns the path the container will use. The bundle came
 * from another host: a config.json (or bundle directory) that is a symlink is refused (ERR_PRECHECK_UNSAFE_PATH),
 * never followed, and the rewrite replaces the file through a rename inside the bundle.
 */
export function ensureFreeCgroupsPath(bundleDir: string, cgroupRoots: readonly string[], suffix: string): string | undefined {
  assertRealDirectory(bundleDir);
  const file = join(bundleDir, 'config.json');
  const text = readFileNoFollow(file);
  if (text === undefined) return undefined;
  let config: { linux?: { cgroupsPath?: string } };
  try {
    config = JSON.parse(text) as typeof config;
  } catch {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${file} is not valid JSON`, { hint: 'The bundle arrived damaged or was changed; copy the container again.' });
  }
  const current = config.linux?.cgroupsPath;
  if (!current || current.includes(':') || !occupied(cgroupRoots, current)) return current;
  const fresh = `${current.replace(/\/+$/, '')}-${suffix}`;
  config.linux = { ...config.linux, cgroupsPath: fresh };
  replaceFileNoFollow(file, JSON.stringify(config, null, 2));
  return fresh;
}
