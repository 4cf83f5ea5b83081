/**
 * ~/.ssh/config as OpenSSH reads it, through the `ssh-config` package: Host patterns, Match (host, originalhost,
 * user...; never `Match exec`), first value wins, and Include (expanded here, relative to ~/.ssh, with * and ? in
 * the last path component). ferry uses HostName, User, Port, IdentityFile, UserKnownHostsFile and ProxyJump;
 * ProxyCommand is refused (it would run a shell command), values are checked (a Port that is not 1-65535 is an
 * error, not silently 22).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import SSHConfig from 'ssh-config';
import { FerryError } from '@ferry/core';

export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  knownHostsFiles: string[];
  /** ProxyJump, as written ([user@]host[:port], comma-separated hops); undefined for none. */
  proxyJump?: string;
}

const MAX_INCLUDE_DEPTH = 16;

function bad(path: string, why: string, hint = 'Fix the line in the file, or give ferry the host in a hosts file (--hosts-file).'): FerryError {
  return new FerryError('ERR_PRECHECK_BAD_INPUT', `${path}: ${why}`, { hint, details: { path } });
}

function expandHome(value: string, home: string): string {
  return value.replace(/^~(?=\/|$)/, home);
}

/** Files named by an Include pattern (relative ones under ~/.ssh, as OpenSSH does for the user's config). */
function includedFiles(pattern: string, home: string): string[] {
  const full = expandHome(pattern, home);
  const path = isAbsolute(full) ? full : join(home, '.ssh', full);
  const name = basename(path);
  if (!/[*?]/.test(name)) return [path];
  const re = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return readdirSync(dirname(path)).filter((f) => re.test(f)).sort().map((f) => join(dirname(path), f));
  } catch {
    return [];
  }
}

/** The config text with every Include line replaced by the files it names (missing files are skipped, as OpenSSH does). */
export function expandIncludes(text: string, home: string, depth = 0): string {
  if (depth > MAX_INCLUDE_DEPTH) throw bad(join(home, '.ssh', 'config'), 'Include nests too deep (a loop?)');
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s*include\s*[=\s]\s*(.+?)\s*$/i.exec(line);
      if (!m) return line;
      return m[1]!
        .split(/\s+/)
        .flatMap((pattern) => includedFiles(pattern.replace(/^"(.*)"$/, '$1'), home))
        .map((file) => {
          try {
            return expandIncludes(readFileSync(file, 'utf8'), home, depth + 1);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
            throw bad(file, `cannot be read (${(err as Error).message})`);
          }
        })
        .join('\n');
    })
    .join('\n');
}

/** Options for `host` (the name as typed); undefined when nothing in the file is about it specifically. */
export function lookupSshConfig(text: string, host: string, home: string, path = join(home, '.ssh', 'config')): SshConfigEntry | undefined {
  let computed: Record<string, string | string[]>;
  try {
    computed = SSHConfig.parse(expandIncludes(text, home)).compute(host, { ignoreCase: true, matchExec: false });
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw bad(path, `cannot be parsed (${(err as Error).message})`);
  }
  const one = (key: string): string | undefined => {
    const v = computed[key];
    return Array.isArray(v) ? v[0] : v;
  };
  const many = (key: string): string[] => {
    const v = computed[key];
    return v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/);
  };
  if (one('proxycommand') !== undefined && one('proxycommand')?.toLowerCase() !== 'none') {
    throw bad(path, `host ${host} uses ProxyCommand, which ferry does not run`, 'Use ProxyJump [user@]jumphost[:port] for this host instead (ferry connects through it itself).');
  }
  const portText = one('port');
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw bad(path, `Port ${portText} for host ${host} is not a port number (1-65535)`);
  }
  const subst = (value: string) => expandHome(value, home).replace(/%d/g, home).replace(/%h/g, host).replace(/%%/g, '%');
  const jump = one('proxyjump');
  const entry: SshConfigEntry = {
    ...(one('hostname') !== undefined ? { hostName: one('hostname')!.replace(/%h/g, host) } : {}),
    ...(one('user') !== undefined ? { user: one('user') } : {}),
    ...(port !== undefined ? { port } : {}),
    identityFiles: many('identityfile').map(subst),
    knownHostsFiles: many('userknownhostsfile').map(subst),
    ...(jump !== undefined && jump.toLowerCase() !== 'none' ? { proxyJump: jump } : {}),
  };
  const specific = entry.hostName !== undefined || entry.user !== undefined || entry.port !== undefined || entry.proxyJump !== undefined || computed.host !== '*';
  return specific || entry.identityFiles.length > 0 || entry.knownHostsFiles.length > 0 ? entry : undefined;
}
