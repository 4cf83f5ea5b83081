/**
 * A restored container must not land in a cgroup that is busy on this host: runc would put the restored tasks into
 * the cgroup of whatever runs there (on hosts that share a cgroup tree, like the sandbox hosts, that is the frozen
 * source itself). When the bundle's cgroupsPath is occupied, a fresh sibling path is used instead.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function occupied(cgroupRoots: readonly string[], cgroupsPath: string): boolean {
  return cgroupRoots.some((root) => {
    try {
      return readFileSync(join(root, cgroupsPath, 'cgroup.procs'), 'utf8').trim().length > 0;
    } catch {
      return false;
    }
  });
}

/** Rewrites config.json's linux.cgroupsPath when needed; returns the path the container will use. */
export function ensureFreeCgroupsPath(bundleDir: string, cgroupRoots: readonly string[], suffix: string): string | undefined {
  const file = join(bundleDir, 'config.json');
  if (!existsSync(file)) return undefined;
  const config = JSON.parse(readFileSync(file, 'utf8')) as { linux?: { cgroupsPath?: string } };
  const current = config.linux?.cgroupsPath;
  if (!current || current.includes(':') || !occupied(cgroupRoots, current)) return current;
  const fresh = `${current.replace(/\/+$/, '')}-${suffix}`;
  config.linux = { ...config.linux, cgroupsPath: fresh };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return fresh;
}
