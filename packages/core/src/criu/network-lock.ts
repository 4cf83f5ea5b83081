/**
 * CRIU's network lock (iptables method, CRIU 4.2.1's default here): while it dumps with --tcp-established it adds,
 * in the container's network namespace, a chain CRIU (`-m mark --mark 0xc114 -j ACCEPT`, `-j DROP`) jumped to from
 * INPUT and OUTPUT, for IPv4 and IPv6; the nftables method adds a table instead. A CRIU killed with SIGKILL leaves
 * them behind (measured: after `kill -9` of a lazy `criu dump`, both chains and jumps stay, and the container's
 * traffic is dropped although its tasks run again). removeCriuNetworkLock() takes them away, as CRIU's own
 * network_unlock() would: the jumps first (repeated while one is left), then the chain. Idempotent.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FerryError } from '../model/ferry-error';

const run = promisify(execFile);

export interface NetworkLockTools {
  nsenterPath: string;
  iptablesPath: string;
  ip6tablesPath: string;
  /** Absent: the host has no nft, so no CRIU table can exist. */
  nftPath?: string;
}

const DEFAULT_TOOLS: NetworkLockTools = { nsenterPath: 'nsenter', iptablesPath: 'iptables', ip6tablesPath: 'ip6tables', nftPath: 'nft' };

/** Whether anything of CRIU's lock was found (and removed). */
export async function removeCriuNetworkLock(netnsPath: string, tools: NetworkLockTools = DEFAULT_TOOLS): Promise<boolean> {
  const inNs = (file: string, args: string[]) => run(tools.nsenterPath, [`--net=${netnsPath}`, file, ...args], { encoding: 'utf8' });
  let found = false;
  for (const iptables of [tools.iptablesPath, tools.ip6tablesPath]) {
    for (const chain of ['INPUT', 'OUTPUT']) {
      for (let i = 0; i < 16; i++) {
        try {
          await inNs(iptables, ['-w', '-D', chain, '-j', 'CRIU']);
          found = true;
        } catch {
          break; // no (more) jump
        }
      }
    }
    try {
      await inNs(iptables, ['-w', '-F', 'CRIU']);
      await inNs(iptables, ['-w', '-X', 'CRIU']);
      found = true;
    } catch {
      /* no chain */
    }
  }
  if (tools.nftPath) found = (await removeNftLock(inNs, tools.nftPath)) || found;
  await assertGone(inNs, tools, netnsPath);
  return found;
}

async function removeNftLock(inNs: (file: string, args: string[]) => Promise<{ stdout: string }>, nft: string): Promise<boolean> {
  let tables: string;
  try {
    tables = (await inNs(nft, ['list', 'tables'])).stdout;
  } catch {
    return false; // no nft here
  }
  let found = false;
  for (const m of tables.matchAll(/^table (\S+) (CRIU-\d+)$/gm)) {
    await inNs(nft, ['delete', 'table', m[1]!, m[2]!]);
    found = true;
  }
  return found;
}

async function assertGone(inNs: (file: string, args: string[]) => Promise<{ stdout: string }>, tools: NetworkLockTools, netnsPath: string): Promise<void> {
  for (const iptables of [tools.iptablesPath, tools.ip6tablesPath]) {
    let rules = '';
    try {
      rules = (await inNs(iptables, ['-w', '-S'])).stdout;
    } catch {
      continue; // no iptables for this family: nothing of CRIU's either
    }
    if (/(^|\s)CRIU(\s|$)/m.test(rules)) {
      throw new FerryError('ERR_ROLLBACK_FAILED', `CRIU's network lock is still in ${netnsPath}: ${rules.split('\n').filter((l) => l.includes('CRIU')).join('; ')}`, {
        hint: `Remove it by hand: \`nsenter --net=${netnsPath} iptables -D INPUT -j CRIU\` (and OUTPUT, then -F CRIU, -X CRIU; the same with ip6tables).`,
      });
    }
  }
}
