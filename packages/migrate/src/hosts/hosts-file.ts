/**
 * ferry's hosts file (/etc/ferry/hosts.yaml, ~/.config/ferry/hosts.yaml):
 *
 *   hosts:
 *     host2: { address: 10.0.0.2, user: root, port: 22, identityFile: /root/.ssh/id_ed25519, knownHostsFile: /etc/ferry/known_hosts }
 */
import { load } from 'js-yaml';
import { FerryError } from '@ferry/core';

export interface HostsFileEntry {
  address: string;
  user?: string;
  port?: number;
  identityFile?: string;
  knownHostsFile?: string;
}

const KEYS = new Set(['address', 'user', 'port', 'identityFile', 'knownHostsFile']);

export function parseHostsFile(text: string, path: string): Record<string, HostsFileEntry> {
  const bad = (why: string) =>
    new FerryError('ERR_PRECHECK_BAD_INPUT', `${path}: ${why}`, {
      hint: 'Each entry under "hosts:" needs an address; allowed keys: address, user, port, identityFile, knownHostsFile.',
    });
  let doc: unknown;
  try {
    doc = load(text);
  } catch (err) {
    throw bad(`not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === undefined || doc === null) return Object.create(null) as Record<string, HostsFileEntry>;
  const hosts = (doc as { hosts?: unknown }).hosts;
  if (typeof doc !== 'object' || Array.isArray(doc) || (hosts !== undefined && (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)))) throw bad('expected a "hosts:" map');
  // No prototype: a host named "constructor" or "__proto__" is just a name.
  const out: Record<string, HostsFileEntry> = Object.create(null) as Record<string, HostsFileEntry>;
  for (const [name, value] of Object.entries((hosts ?? {}) as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) throw bad(`host "${name}" must be a map`);
    const entry = value as Record<string, unknown>;
    for (const key of Object.keys(entry)) if (!KEYS.has(key)) throw bad(`host "${name}": unknown key "${key}"`);
    if (typeof entry.address !== 'string' || !entry.address) throw bad(`host "${name}" has no address`);
    if (entry.port !== undefined && (!Number.isInteger(entry.port) || (entry.port as number) < 1 || (entry.port as number) > 65535)) {
      throw bad(`host "${name}": port must be 1-65535`);
    }
    for (const key of ['user', 'identityFile', 'knownHostsFile'] as const) {
      if (entry[key] !== undefined && typeof entry[key] !== 'string') throw bad(`host "${name}": ${key} must be a string`);
    }
    out[name] = entry as unknown as HostsFileEntry;
  }
  return out;
}
