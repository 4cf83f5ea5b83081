/**
 * What a packet hold installs, as data: the record a journal keeps (enough for another process to lift the hold)
 * and the iptables argv that install and remove its rules. Pure apart from reading the namespace's identity.
 *
 * The rules, per address family, in the namespace's `filter` table:
 *   CHAIN (FERRY-HOLD-<id>):  [ipv6: neighbour solicitations/advertisements RETURN]  -j NFQUEUE --queue-num N
 *   INPUT 1:   ! -i lo -j CHAIN        (or -i IF for each listed interface)
 *   FORWARD 1:         -j CHAIN        (or -i IF / -o IF)
 *   OUTPUT 1:  ! -o lo -j CHAIN        (or -o IF)
 * No --queue-bypass: with nobody bound to the queue (ferry died), the kernel drops what hits the rule, so the
 * namespace stays cut off until someone decides; bypass would open it on the death of the process that holds it.
 * Neighbour discovery passes, as ARP does (netfilter's IP hooks never see ARP): it is the namespace's kernel
 * answering for an address, not the held copy talking, and a client whose neighbour entry failed would stop
 * retransmitting on the wire.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { FerryError } from '../model/ferry-error';

export type HoldFamily = 'ipv4' | 'ipv6';

/** Which iptables implementation installed the rules; the one that removes them must be the same. */
export type IptablesVariant = 'nf_tables' | 'legacy';

/** Everything needed to find and lift a hold from another process (the journal's `hold` record). JSON-safe. */
export interface PacketHoldRecord {
  kind: 'nfqueue-hold';
  version: 1;
  id: string;
  /** nsfs path of the held namespace (/run/netns/NAME or /proc/PID/ns/net). */
  netnsPath: string;
  /** Identity of that namespace when the hold was planned: a path reused by another namespace is not touched. */
  netns: { dev: number; ino: number };
  queueNum: number;
  chain: string;
  /** Interfaces whose traffic is held; empty: every interface but lo (also those that appear later). */
  interfaces: string[];
  families: HoldFamily[];
  variant: IptablesVariant;
}

export interface PlanPacketHoldInput {
  netnsPath: string;
  interfaces?: readonly string[];
  /** Default: 0x4000-0xffff, random (queue numbers are per namespace; a namespace of its own has no others). */
  queueNum?: number;
  families?: readonly HoldFamily[];
  variant: IptablesVariant;
  /** For tests: fixed id instead of a random one. */
  id?: string;
}

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const ID = /^[0-9a-f]{8}$/;
/** ICMPv6 types that pass the hold: neighbour solicitation and advertisement. */
const ND_TYPES = ['neighbour-solicitation', 'neighbour-advertisement'];

export function planPacketHold(input: PlanPacketHoldInput): PacketHoldRecord {
  const bad = (message: string) => new FerryError('ERR_PRECHECK_BAD_INPUT', message, { hint: 'This is a bug in the caller of planPacketHold.' });
  if (!input.netnsPath.startsWith('/')) throw bad(`netns path "${input.netnsPath}" is not absolute`);
  const interfaces = [...(input.interfaces ?? [])];
  for (const name of interfaces) if (!IFNAME.test(name) || name === 'lo') throw bad(`"${name}" cannot name a held interface`);
  const queueNum = input.queueNum ?? 0x4000 + randomBytes(2).readUInt16BE(0) % 0xc000;
  if (!Number.isInteger(queueNum) || queueNum < 0 || queueNum > 0xffff) throw bad(`queue number ${queueNum} is not in 0..65535`);
  const id = input.id ?? randomBytes(4).toString('hex');
  if (!ID.test(id)) throw bad(`hold id "${id}" is not 8 hex digits`);
  const families: HoldFamily[] = [...new Set<HoldFamily>(input.families ?? ['ipv4', 'ipv6'])];
  let stat;
  try {
    stat = statSync(input.netnsPath);
  } catch (err) {
    throw new FerryError('ERR_NETWORK_HOLD_FAILED', `network namespace ${input.netnsPath} is not there`, {
      hint: 'Hold the traffic of a namespace that exists (create it first).',
      cause: err,
    });
  }
  return {
    kind: 'nfqueue-hold',
    version: 1,
    id,
    netnsPath: input.netnsPath,
    netns: { dev: stat.dev, ino: stat.ino },
    queueNum,
    chain: `FERRY-HOLD-${id}`,
    interfaces,
    families,
    variant: input.variant,
  };
}

/** The jumps from the built-in chains into the hold's chain: [chain, match + target argv]. */
function jumps(record: PacketHoldRecord): [builtin: string, spec: string[]][] {
  const to = ['-j', record.chain];
  if (record.interfaces.length === 0) {
    return [
      ['INPUT', ['!', '-i', 'lo', ...to]],
      ['FORWARD', to],
      ['OUTPUT', ['!', '-o', 'lo', ...to]],
    ];
  }
  return record.interfaces.flatMap((name): [string, string[]][] => [
    ['INPUT', ['-i', name, ...to]],
    ['FORWARD', ['-i', name, ...to]],
    ['FORWARD', ['-o', name, ...to]],
    ['OUTPUT', ['-o', name, ...to]],
  ]);
}

/** The hold's own chain: what passes, then the queue. */
function chainRules(record: PacketHoldRecord, family: HoldFamily): string[][] {
  const pass = family === 'ipv6' ? ND_TYPES.map((type) => ['-p', 'ipv6-icmp', '--icmpv6-type', type, '-j', 'RETURN']) : [];
  return [...pass, ['-j', 'NFQUEUE', '--queue-num', String(record.queueNum)]];
}

/** What `iptables -S` (filter table) shows of a hold: whether its chain exists, and its jumps as "-A CHAIN ..." lines. */
export function parseHoldListing(listing: string, record: PacketHoldRecord): { chain: boolean; jumps: string[] } {
  const lines = listing.split('\n').map((l) => l.trim());
  return {
    chain: lines.includes(`-N ${record.chain}`),
    jumps: lines.filter((l) => /^-A (INPUT|FORWARD|OUTPUT) /.test(l) && l.endsWith(` -j ${record.chain}`)),
  };
}

/**
 * iptables-restore input (--noflush) that installs the hold in one transaction: the chain is declared (created, or
 * emptied if a retried install left one) and filled, and the jumps that are not there yet are inserted first in
 * their chains. The kernel applies it all at once: there is never a half-installed hold. Every token comes from
 * validated record fields (hex id, queue number, interface names).
 */
export function installScript(record: PacketHoldRecord, family: HoldFamily, listing: string): string {
  const present = new Set(parseHoldListing(listing, record).jumps);
  const lines = ['*filter', `:${record.chain} - [0:0]`];
  for (const rule of chainRules(record, family)) lines.push(['-A', record.chain, ...rule].join(' '));
  for (const [builtin, spec] of jumps(record)) {
    if (!present.has(['-A', builtin, ...spec].join(' '))) lines.push(['-I', builtin, '1', ...spec].join(' '));
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * iptables-restore input (--noflush) that removes what the listing shows of the hold (its jumps, then its chain), or
 * undefined when nothing of it is there. Removing twice, or after a partial install, is fine.
 */
export function removeScript(record: PacketHoldRecord, listing: string): string | undefined {
  const found = parseHoldListing(listing, record);
  if (!found.chain && found.jumps.length === 0) return undefined;
  const lines = ['*filter', ...found.jumps.map((jump) => jump.replace(/^-A /, '-D '))];
  if (found.chain) lines.push(`-F ${record.chain}`, `-X ${record.chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Whether a parsed JSON value is a hold record this version can lift. */
export function isPacketHoldRecord(value: unknown): value is PacketHoldRecord {
  const r = value as PacketHoldRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.kind === 'nfqueue-hold' &&
    r.version === 1 &&
    typeof r.id === 'string' &&
    ID.test(r.id) &&
    r.chain === `FERRY-HOLD-${r.id}` &&
    typeof r.netnsPath === 'string' &&
    r.netnsPath.startsWith('/') &&
    typeof r.netns?.dev === 'number' &&
    typeof r.netns?.ino === 'number' &&
    Number.isInteger(r.queueNum) &&
    Array.isArray(r.interfaces) &&
    r.interfaces.every((i) => typeof i === 'string' && IFNAME.test(i)) &&
    Array.isArray(r.families) &&
    r.families.every((f) => f === 'ipv4' || f === 'ipv6') &&
    (r.variant === 'nf_tables' || r.variant === 'legacy')
  );
}
