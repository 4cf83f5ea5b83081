/**
 * What a CRIU dump that ended without unlocking leaves in the way of a container's network, and its removal.
 *
 * TCP repair mode: while it dumps with --tcp-established CRIU puts every established socket into repair mode. When
 * CRIU is killed, or when a lazy dump fails after it (CRIU 4.2.1's cr_dump_finish unlocks the network *before* the
 * lazy page transfer, and not again when that transfer fails), the sockets stay in repair mode: measured, the
 * workload's connection stops answering, and dies once the lock below is lifted. takeSocketsOutOfRepair() takes
 * them out (TCP_REPAIR_OFF, as CRIU's own unlock does); it must run before the lock is removed.
 *
 * CRIU's network lock (iptables method, CRIU 4.2.1's default here): while it dumps with --tcp-established it adds,
 * in the container's network namespace, a chain CRIU (`-m mark --mark 0xc114 -j ACCEPT`, `-j DROP`) jumped to from
 * INPUT and OUTPUT, for IPv4 and IPv6; the nftables method adds a table instead. A CRIU killed with SIGKILL leaves
 * them behind (measured: after `kill -9` of a lazy `criu dump`, both chains and jumps stay, and the container's
 * traffic is dropped although its tasks run again). removeCriuNetworkLock() takes them away, as CRIU's own
 * network_unlock() would: the jumps first (repeated while one is left), then the chain. Idempotent.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { leaveTcpRepair } from '@ferry/native';
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
    if (!criuRulesIn(await rulesOf(inNs, iptables))) continue;
    found = true;
    for (const chain of ['INPUT', 'OUTPUT']) {
      for (let i = 0; i < 16; i++) {
        try {
          await inNs(iptables, ['-w', '-D', chain, '-j', 'CRIU']);
        } catch {
          break; // no (more) jump
        }
      }
    }
    await inNs(iptables, ['-w', '-F', 'CRIU']).catch(() => undefined);
    await inNs(iptables, ['-w', '-X', 'CRIU']).catch(() => undefined);
    const left = criuRulesIn(await rulesOf(inNs, iptables));
    if (left) {
      throw new FerryError('ERR_ROLLBACK_FAILED', `CRIU's network lock is still in ${netnsPath}: ${left}`, {
        hint: `Remove it by hand: \`nsenter --net=${netnsPath} iptables -D INPUT -j CRIU\` (and OUTPUT, then -F CRIU, -X CRIU; the same with ip6tables).`,
      });
    }
  }
  if (tools.nftPath) found = (await removeNftLock(inNs, tools.nftPath)) || found;
  return found;
}

async function rulesOf(inNs: (file: string, args: string[]) => Promise<{ stdout: string }>, iptables: string): Promise<string> {
  try {
    return (await inNs(iptables, ['-w', '-S'])).stdout;
  } catch {
    return ''; // no iptables for this family: nothing of CRIU's either
  }
}

function criuRulesIn(rules: string): string {
  return rules
    .split('\n')
    .filter((l) => /(^|\s)CRIU(\s|$)/.test(l))
    .join('; ');
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

/** Takes every TCP socket of these processes out of repair mode; returns how many were in it. */
export function takeSocketsOutOfRepair(pids: readonly number[]): number {
  let count = 0;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith('socket:') && leaveTcpRepair(pid, Number(fd))) count++;
    }
  }
  return count;
}
