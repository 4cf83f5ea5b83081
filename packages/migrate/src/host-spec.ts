/**
 * Destination host specs as operators type them: `user@address[:port]`, `address`, `[v6addr]:port`, or a name to be
 * looked up in ferry's hosts file or ~/.ssh/config (resolution happens in the transport, not here).
 */
import { FerryError } from '@ferry/core';

export interface HostSpec {
  user?: string;
  host: string;
  port?: number;
}

const NAME = /^[A-Za-z0-9._-]+$/;

export function parseHostSpec(text: string): HostSpec {
  const bad = (why: string) =>
    new FerryError('ERR_PRECHECK_BAD_INPUT', `invalid host "${text}": ${why}`, {
      hint: 'Write the destination as NAME, ADDRESS, USER@ADDRESS or USER@ADDRESS:PORT.',
    });
  if (text.length === 0 || /\s/.test(text)) throw bad('empty or contains white space');
  let rest = text;
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!NAME.test(user)) throw bad('user names may contain only letters, digits, ".", "_" and "-"');
  }
  let host = rest;
  let portText: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(rest);
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2];
  } else if (rest.split(':').length === 2) {
    [host, portText] = rest.split(':') as [string, string];
  } else if (rest.includes(':')) {
    throw bad('put IPv6 addresses in brackets, e.g. [fe80::1]:22');
  }
  if (!v6 && !NAME.test(host)) throw bad('host names may contain only letters, digits, ".", "_" and "-"');
  // A leading "-" would read as an option to any tool the name reaches (ssh -oProxyCommand=...).
  if (host.startsWith('-') || user?.startsWith('-')) throw bad('host and user names cannot start with "-"');
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw bad(`port must be 1-65535, got "${portText}"`);
  }
  return { user, host, port };
}

export function formatHostSpec(spec: HostSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.user ? `${spec.user}@` : ''}${host}${spec.port ? `:${spec.port}` : ''}`;
}
