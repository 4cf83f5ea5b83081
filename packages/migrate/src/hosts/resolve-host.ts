/**
 * Turns what the operator typed after --to into everything needed to connect: ferry's hosts files first, then
 * ~/.ssh/config, then the text itself as USER@ADDRESS[:PORT].
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '@ferry/core';
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
  /** ProxyJump: the host this one is reached through. */
  jump?: Destination;
}

export interface ResolveOptions {
  home: string;
  /** Defaults: /etc/ferry/hosts.yaml and ~/.config/ferry/hosts.yaml (the later wins). */
  hostsFiles?: string[];
  sshConfigPath?: string;
  defaultUser?: string;
  /** The hosts files were named by the user (--hosts-file): a missing one is an error, not skipped. */
  hostsFilesGiven?: boolean;
}

/** ProxyJump chains longer than this are refused (a loop in ~/.ssh/config). */
const MAX_JUMPS = 8;

export function defaultHostsFiles(home: string): string[] {
  return ['/etc/ferry/hosts.yaml', join(home, '.config', 'ferry', 'hosts.yaml')];
}

function readOptional(path: string, what: string, required = false): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read (${(err as Error).message})`;
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${what} ${path} ${why}`, {
      hint: what === 'hosts file' ? 'Name a YAML file with a "hosts:" map (see docs), or leave --hosts-file out.' : `Check ${path}.`,
      details: { path },
    });
  }
}

export function resolveDestination(text: string, options: ResolveOptions, jumps = 0): Destination {
  const home = options.home;
  const defaultKnownHosts = [join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  const defaultIdentities = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f));
  for (const path of (options.hostsFiles ?? defaultHostsFiles(home)).slice().reverse()) {
    const content = readOptional(path, 'hosts file', options.hostsFilesGiven === true);
    if (content === undefined) continue;
    const entries = parseHostsFile(content, path);
    // Own entries only: `--to constructor` must not find Object.prototype.constructor.
    const entry = Object.hasOwn(entries, text) ? entries[text] : undefined;
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
  const sshConfig = readOptional(sshConfigPath, 'ssh config');
  const fromSsh = sshConfig ? lookupSshConfig(sshConfig, spec.host, home, sshConfigPath) : undefined;
  let jump: Destination | undefined;
  if (fromSsh?.proxyJump) {
    if (jumps >= MAX_JUMPS) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${sshConfigPath}: ProxyJump for ${spec.host} goes through more than ${MAX_JUMPS} hosts (a loop?)`, { hint: 'Check the ProxyJump lines.' });
    }
    // "a,b" reaches b through a, then the destination through b.
    for (const hop of fromSsh.proxyJump.split(',').map((h) => h.trim()).filter(Boolean)) {
      const resolved = resolveDestination(hop, { ...options, hostsFiles: [] }, jumps + 1);
      jump = { ...resolved, ...(jump && !resolved.jump ? { jump } : {}) };
    }
  }
  return {
    ...(jump ? { jump } : {}),
    name: text,
    address: fromSsh?.hostName ?? spec.host,
    port: spec.port ?? fromSsh?.port ?? 22,
    user: spec.user ?? fromSsh?.user ?? options.defaultUser ?? 'root',
    identityFiles: fromSsh?.identityFiles.length ? fromSsh.identityFiles : defaultIdentities,
    knownHostsFiles: fromSsh?.knownHostsFiles.length ? fromSsh.knownHostsFiles : defaultKnownHosts,
    source: fromSsh ? sshConfigPath : 'command line',
  };
}
