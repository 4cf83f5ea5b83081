/**
 * Strict host-key checking against OpenSSH known_hosts files: plain and hashed (|1|salt|hash) host fields,
 * "[host]:port" for ports other than 22, and @revoked markers. An unknown key and a changed key are different errors,
 * because the operator's right reaction differs (verify and accept, versus stop and investigate).
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FerryError } from '@ferry/core';

export interface KnownKey {
  type: string;
  keyBase64: string;
  revoked: boolean;
  file: string;
  line: number;
}

/** The name a known_hosts file uses for a host: "host" on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function findKnownKeys(files: readonly string[], host: string, port: number): KnownKey[] {
  const name = knownHostsName(host, port);
  const keys: KnownKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    text.split('\n').forEach((raw, index) => {
      const parts = raw.trim().split(/\s+/);
      if (!parts[0] || parts[0].startsWith('#')) return;
      let revoked = false;
      if (parts[0].startsWith('@')) {
        if (parts[0] === '@revoked') revoked = true;
        else return; // @cert-authority: certificates are not supported; such lines do not vouch for plain keys.
        parts.shift();
      }
      const [hosts, type, keyBase64] = parts;
      if (!hosts || !type || !keyBase64 || !hostFieldMatches(hosts, name)) return;
      keys.push({ type, keyBase64, revoked, file, line: index + 1 });
    });
  }
  return keys;
}

/** SHA256 fingerprint as OpenSSH prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type encoded at the start of an SSH public key blob. */
export function keyType(key: Buffer): string {
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('ascii');
}

export interface HostKeyPolicy {
  knownHostsFiles: readonly string[];
  /** Accept and record a key for a host that has none yet (never a changed key). */
  acceptNew?: boolean;
}

/**
 * Throws ERR_TRANSPORT_HOST_KEY_* unless `key` is known for host:port. With acceptNew, a host with no entry at all is
 * recorded in the first known_hosts file.
 */
export function verifyHostKey(host: string, port: number, key: Buffer, policy: HostKeyPolicy): void {
  const type = keyType(key);
  const base64 = key.toString('base64');
  const known = findKnownKeys(policy.knownHostsFiles, host, port);
  const print = fingerprint(key);
  const name = knownHostsName(host, port);
  if (known.some((k) => k.revoked && k.keyBase64 === base64)) {
    throw new FerryError('ERR_TRANSPORT_HOST_KEY_CHANGED', `host key ${print} of ${name} is marked @revoked`, {
      hint: 'Do not connect; find out why the host presents a revoked key.',
    });
  }
  if (known.some((k) => !k.revoked && k.type === type && k.keyBase64 === base64)) return;
  const sameType = known.filter((k) => !k.revoked && k.type === type);
  if (sameType.length > 0) {
    const where = sameType.map((k) => `${k.file}:${k.line}`).join(', ');
    throw new FerryError('ERR_TRANSPORT_HOST_KEY_CHANGED', `the host key of ${name} has CHANGED (now ${type} ${print}; known at ${where})`, {
      hint: 'Someone may be intercepting the connection, or the host was reinstalled. Verify the new key out of band, then remove the old line.',
      details: { fingerprint: print, knownAt: where },
    });
  }
  const otherTypes = known.filter((k) => !k.revoked);
  if (otherTypes.length > 0) {
    // Known, but by keys of other types only: ferry asks for those types first (hostKeyAlgorithms), so this host no
    // longer has them, or never did. Not "unknown", and --accept-new-host-key (new hosts only) would not help.
    const types = [...new Set(otherTypes.map((k) => k.type))].join(', ');
    const where = otherTypes.map((k) => `${k.file}:${k.line}`).join(', ');
    throw new FerryError('ERR_TRANSPORT_HOST_KEY_UNKNOWN', `${name} shows a ${type} host key (${print}), but known_hosts has only ${types} keys for it (${where})`, {
      hint: `The host may have been reinstalled or lost its ${types} key. Compare ${print} with \`ssh-keygen -lf ${hostKeyFile(type)}\` on the host; if it matches, add this line to ${otherTypes[0]!.file}: ${name} ${type} ${base64}`,
      details: { fingerprint: print, knownAt: where },
    });
  }
  if (policy.acceptNew && known.length === 0) {
    const file = policy.knownHostsFiles[0];
    if (!file) throw new Error('acceptNew needs a known_hosts file');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    appendFileSync(file, `${name} ${type} ${base64}\n`, { mode: 0o600 });
    return;
  }
  throw new FerryError('ERR_TRANSPORT_HOST_KEY_UNKNOWN', `the host key of ${name} is not known (${type} ${print})`, {
    hint: `Verify the fingerprint on the host (ssh-keygen -lf ${hostKeyFile(type)}), then rerun with --accept-new-host-key or add it to ${policy.knownHostsFiles[0] ?? '~/.ssh/known_hosts'}.`,
    details: { fingerprint: print },
  });
}

/** Where sshd keeps its public host key of `type` (OpenSSH's default file names). */
export function hostKeyFile(type: string): string {
  const kind = type === 'ssh-ed25519' ? 'ed25519' : type.startsWith('ecdsa-') ? 'ecdsa' : type === 'ssh-rsa' ? 'rsa' : type.replace(/^ssh-/, '');
  return `/etc/ssh/ssh_host_${kind}_key.pub`;
}

/** Host-key algorithms ferry accepts: no ssh-rsa (RSA signatures with SHA-1), no DSA. */
export const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'] as const;

/**
 * HOST_KEY_ALGORITHMS with those matching the keys known for host:port first, as OpenSSH orders them: a host with
 * several keys then shows the one known_hosts holds.
 */
export function hostKeyAlgorithms(files: readonly string[], host: string, port: number): string[] {
  const known = new Set(findKnownKeys(files, host, port).filter((k) => !k.revoked).map((k) => k.type));
  const matches = (algorithm: string) => known.has(algorithm) || (algorithm.startsWith('rsa-sha2-') && known.has('ssh-rsa'));
  return [...HOST_KEY_ALGORITHMS.filter(matches), ...HOST_KEY_ALGORITHMS.filter((a) => !matches(a))];
}
