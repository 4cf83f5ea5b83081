/**
 * Turns what the operator typed after --to into everything needed to connect: ferry's hosts files first, then
 * ~/.ssh/config, then the text itself as USER@ADDRESS[:PORT].
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHostSpec } from '../host-spec';
import { parseHostsFile } from './hosts-file';
import { lookupSshConfig } from './ssh-config';

export interface Destination {
  /** What the operator typed. */
  name: string;
  address: string;
  port: number;
  user: string;
  identityFiles: string[];
  knownHostsFiles: string[];
  /** Where the facts came from, for messages. */
  source: string;
}

export interface ResolveOptions {
  home: string;
  /** Defaults: /etc/ferry/hosts.yaml and ~/.config/ferry/hosts.yaml (the later wins). */
  hostsFiles?: string[];
  sshConfigPath?: string;
  defaultUser?: string;
}

export function defaultHostsFiles(home: string): string[] {
  return ['/etc/ferry/hosts.yaml', join(home, '.config', 'ferry', 'hosts.yaml')];
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function resolveDestination(text: string, options: ResolveOptions): Destination {
  const home = options.home;
  const defaultKnownHosts = [join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  const defaultIdentities = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f));
  for (const path of (options.hostsFiles ?? defaultHostsFiles(home)).slice().reverse()) {
    const content = readOptional(path);
    if (content === undefined) continue;
    const entry = parseHostsFile(content, path)[text];
    if (!entry) continue;
    return {
      name: text,
      address: entry.address,
      port: entry.port ?? 22,
      user: entry.user ?? options.defaultUser ?? 'root',
      identityFiles: entry.identityFile ? [entry.identityFile] : defaultIdentities,
      knownHostsFiles: entry.knownHostsFile ? [entry.knownHostsFile] : defaultKnownHosts,
      source: path,
    };
  }
  const spec = parseHostSpec(text);
  const sshConfigPath = options.sshConfigPath ?? join(home, '.ssh', 'config');
  const sshConfig = readOptional(sshConfigPath);
  const fromSsh = sshConfig ? lookupSshConfig(sshConfig, spec.host, home) : undefined;
  return {
    name: text,
    address: fromSsh?.hostName ?? spec.host,
    port: spec.port ?? fromSsh?.port ?? 22,
    user: spec.user ?? fromSsh?.user ?? options.defaultUser ?? 'root',
    identityFiles: fromSsh?.identityFiles.length ? fromSsh.identityFiles : defaultIdentities,
    knownHostsFiles: fromSsh?.knownHostsFiles.length ? fromSsh.knownHostsFiles : defaultKnownHosts,
    source: fromSsh ? sshConfigPath : 'command line',
  };
}
