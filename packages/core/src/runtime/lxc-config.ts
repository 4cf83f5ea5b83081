/**
 * An LXC container's config file (`LXCPATH/NAME/config`): parsing, and the pure rules that say which settings CRIU
 * cannot checkpoint or restore, so the adapter refuses them before anything is frozen.
 *
 * The rules come from measurements with LXC 5.0.2 and CRIU 4.2.1 on this project's machines:
 * - `lxc.tty.max > 0`: LXC bind-mounts host ptys (/dev/pts/N of the host) onto the container's /dev/ttyN, and CRIU
 *   records those mounts by host path. The dump succeeds; the restore fails when the host has no /dev/pts/N then
 *   (`mnt-v2: Failed to open_tree /dev/pts/0`, measured) and would bind a stranger's terminal when it has one.
 *   Refusing it up front matters twice over: `ferry checkpoint` without --leave-running stops the container after the
 *   dump, so a failing restore would leave it stopped.
 * - `lxc.console.path` naming a host device or file: the console is outside the container. (Unset, LXC gives the
 *   container a pty console, and `lxc.pty.max > 0` a devpts instance: both dump and restore fine while no process
 *   holds a terminal, measured; a process that does is refused by the adapter at run time (terminalHolder): with
 *   the container's console on its stdin, dump and restore "succeed" but the restored process holds the host's
 *   /dev/pts/0 instead, measured.)
 * - `lxc.apparmor.profile` (other than `unconfined`) on a kernel without AppArmor: the dump succeeds, the restore
 *   fails (`apparmor LSM specified but apparmor not supported by kernel`, measured).
 * - Bind mounts of host paths (`lxc.mount.entry` with `bind`, or an `lxc.mount.fstab`): a bind of /lib fails to
 *   restore (`mnt-v2: Failed to move_mount from /lib`, measured), and any host path must exist identically on the
 *   host that restores, which ferry cannot check from here. Bind mounts from inside the container directory travel
 *   with it and are allowed.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { readFileNoFollow, replaceFileNoFollow } from '../host/safe-files';

export interface LxcConfigEntry {
  key: string;
  value: string;
  /** The file the line came from (the container's config or an lxc.include). */
  file: string;
}

/** Lines `key = value`; comments and blank lines dropped. Exposed for tests. */
export function parseLxcConfigText(text: string, file: string): LxcConfigEntry[] {
  const entries: LxcConfigEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    entries.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file });
  }
  return entries;
}

/**
 * The container's config with its `lxc.include`s expanded in place (files, or every *.conf of a directory), the way
 * liblxc reads it. A missing include is skipped, as liblxc does for directories; a loop is cut.
 */
export function readLxcConfig(path: string, readText: (p: string) => string = (p) => readFileSync(p, 'utf8'), listDir?: (p: string) => string[]): LxcConfigEntry[] {
  const seen = new Set<string>();
  const expand = (file: string, depth: number): LxcConfigEntry[] => {
    if (seen.has(file) || depth > 16) return [];
    seen.add(file);
    let text: string;
    try {
      text = readText(file);
    } catch (err) {
      if (depth === 0) {
        throw new FerryError('ERR_RUNTIME_FAILED', `cannot read LXC config ${file}: ${(err as Error).message}`, {
          hint: 'Check the container directory (`lxc-ls -f`).',
          cause: err,
        });
      }
      if (listDir) {
        try {
          return listDir(file)
            .filter((f) => f.endsWith('.conf'))
            .sort()
            .flatMap((f) => expand(join(file, f), depth + 1));
        } catch {
          return [];
        }
      }
      return [];
    }
    return parseLxcConfigText(text, file).flatMap((entry) =>
      entry.key === 'lxc.include' ? expand(isAbsolute(entry.value) ? entry.value : resolve(dirname(file), entry.value), depth + 1) : [entry],
    );
  };
  return expand(path, 0);
}

/** The effective value of a single-valued key: the last one set wins; an empty value clears it. */
export function lastValue(entries: readonly LxcConfigEntry[], key: string): string | undefined {
  let value: string | undefined;
  for (const entry of entries) if (entry.key === key) value = entry.value === '' ? undefined : entry.value;
  return value;
}

/** `dir:/path` or `/path` → /path; other storage backends (btrfs:, overlay:, ...) stay as written. */
export function rootfsPathOf(entries: readonly LxcConfigEntry[]): string | undefined {
  const value = lastValue(entries, 'lxc.rootfs.path');
  if (value === undefined) return undefined;
  return value.startsWith('dir:') ? value.slice(4) : value;
}

export interface ConfigProblem {
  key: string;
  reason: string;
  hint: string;
}

export interface HostFacts {
  /** The kernel has AppArmor enabled (/sys/module/apparmor/parameters/enabled is Y). */
  apparmor: boolean;
  /** The container's own directory (LXCPATH/NAME): bind mounts from inside it travel with the container. */
  containerDir: string;
}

/** Whether this kernel has AppArmor enabled. */
export function hostHasAppArmor(): boolean {
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}

/** Every setting CRIU cannot checkpoint and restore (see the header), in config order; empty when all is well. */
export function lxcConfigProblems(entries: readonly LxcConfigEntry[], host: HostFacts): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const tty = Number(lastValue(entries, 'lxc.tty.max') ?? '0');
  if (tty > 0) {
    problems.push({
      key: 'lxc.tty.max',
      reason: `it has ${tty} tty device(s) (lxc.tty.max = ${tty}); CRIU cannot restore them`,
      hint: 'Set `lxc.tty.max = 0` (and remove getty lines from the container\'s inittab), then restart the container.',
    });
  }
  const console = lastValue(entries, 'lxc.console.path');
  if (console !== undefined && console !== 'none') {
    problems.push({
      key: 'lxc.console.path',
      reason: `its console is the host's ${console} (lxc.console.path = ${console}); CRIU cannot restore a host device`,
      hint: 'Set `lxc.console.path = none`, then restart the container.',
    });
  }
  const apparmor = lastValue(entries, 'lxc.apparmor.profile');
  if (apparmor !== undefined && apparmor !== 'unconfined' && !host.apparmor) {
    problems.push({
      key: 'lxc.apparmor.profile',
      reason: `it asks for an AppArmor profile (lxc.apparmor.profile = ${apparmor}) but this kernel has no AppArmor; CRIU cannot apply it on restore`,
      hint: 'Remove `lxc.apparmor.profile` from the container config (or set it to `unconfined`), then restart the container.',
    });
  }
  for (const entry of entries) {
    if (entry.key === 'lxc.mount.fstab') {
      problems.push({
        key: entry.key,
        reason: `it mounts the entries of ${entry.value} (lxc.mount.fstab), which ferry cannot check for host bind mounts`,
        hint: 'Move the entries into `lxc.mount.entry` lines without host bind mounts.',
      });
      continue;
    }
    if (entry.key !== 'lxc.mount.entry') continue;
    const fields = entry.value.split(/\s+/);
    const [source, , , options = ''] = fields;
    if (!source || !options.split(',').some((o) => o === 'bind' || o === 'rbind')) continue;
    const inside = source === host.containerDir || source.startsWith(`${host.containerDir}/`);
    if (!isAbsolute(source) || inside) continue;
    problems.push({
      key: entry.key,
      reason: `it bind-mounts the host's ${source} (lxc.mount.entry = ${entry.value}); CRIU cannot restore a host bind mount on another host`,
      hint: `Copy what the container needs from ${source} into its rootfs and remove the lxc.mount.entry line, then restart the container.`,
    });
  }
  return problems;
}

/**
 * Points config values that named the old container directory (rootfs, mount entries, logs) at the new one. The
 * directory arrived from another host: a config that is a symlink is refused (ERR_PRECHECK_UNSAFE_PATH), never
 * written through; the new text replaces the file by a rename inside the container directory.
 */
export function rewriteConfigPaths(configPath: string, oldDir: string, newDir: string): void {
  const text = readFileNoFollow(configPath);
  if (text === undefined) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${configPath} does not exist`, { hint: 'An LXC container directory holds its config file.' });
  }
  const rewritten = text
    .split('\n')
    .map((line) => (/^\s*#/.test(line) ? line : line.split(`${oldDir}/`).join(`${newDir}/`)))
    .join('\n');
  if (rewritten !== text) replaceFileNoFollow(configPath, rewritten);
}
