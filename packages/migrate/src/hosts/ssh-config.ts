/**
 * The subset of ~/.ssh/config ferry honours for destinations: Host blocks (patterns with * and ?, negation with !)
 * and HostName, User, Port, IdentityFile, UserKnownHostsFile. First value wins, as in OpenSSH.
 */
export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  knownHostsFiles: string[];
}

interface Block {
  patterns: string[];
  options: [key: string, value: string][];
}

function parseBlocks(text: string): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], options: [] }];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(\S+?)(?:\s*=\s*|\s+)(.+)$/.exec(line);
    if (!match) continue;
    const key = (match[1] ?? '').toLowerCase();
    const value = (match[2] ?? '').trim().replace(/^"(.*)"$/, '$1');
    if (key === 'host') blocks.push({ patterns: value.split(/\s+/), options: [] });
    else if (key === 'match') blocks.push({ patterns: [], options: [] }); // Match blocks are not supported: ignored.
    else blocks.at(-1)?.options.push([key, value]);
  }
  return blocks;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function blockMatches(block: Block, host: string): boolean {
  let matched = false;
  for (const pattern of block.patterns) {
    if (pattern.startsWith('!')) {
      if (globToRegExp(pattern.slice(1)).test(host)) return false;
    } else if (globToRegExp(pattern).test(host)) {
      matched = true;
    }
  }
  return matched;
}

/** Options for `host` (the name as typed); undefined when no Host block but `Host *` applies and sets nothing. */
export function lookupSshConfig(text: string, host: string, home: string): SshConfigEntry | undefined {
  const entry: SshConfigEntry = { identityFiles: [], knownHostsFiles: [] };
  let specific = false;
  for (const block of parseBlocks(text)) {
    if (!blockMatches(block, host)) continue;
    if (!block.patterns.every((p) => p === '*')) specific = true;
    for (const [key, value] of block.options) {
      const path = () => value.replace(/^~(?=\/|$)/, home).replace(/%d/g, home).replace(/%h/g, host);
      if (key === 'hostname' && entry.hostName === undefined) entry.hostName = value.replace(/%h/g, host);
      else if (key === 'user' && entry.user === undefined) entry.user = value;
      else if (key === 'port' && entry.port === undefined) entry.port = Number(value);
      else if (key === 'identityfile') entry.identityFiles.push(path());
      else if (key === 'userknownhostsfile') entry.knownHostsFiles.push(...path().split(/\s+/));
    }
  }
  return specific ? entry : undefined;
}
