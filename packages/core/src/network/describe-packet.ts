/**
 * One line for a held packet, from its first bytes (IPv4/IPv6 header, then TCP/UDP/ICMP): what a hold reports
 * about the traffic it kept, e.g. `TCP 10.77.0.1:43568 > 10.77.0.9:8080 [PA] seq 8290 ack 15397 len 9`.
 */
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const ICMPV6 = 58;
const HOP_BY_HOP = 0;

export interface PacketSummary {
  protocol: string;
  src: string;
  dst: string;
  srcPort?: number;
  dstPort?: number;
  /** TCP flags as letters (S F R P A U), in that order. */
  flags?: string;
  seq?: number;
  ack?: number;
  /** Transport payload bytes (TCP/UDP), from the IP header's length. */
  payloadBytes?: number;
  icmpType?: number;
}

function ipv6(bytes: Buffer, offset: number): string {
  const words: string[] = [];
  for (let i = 0; i < 8; i++) words.push(bytes.readUInt16BE(offset + i * 2).toString(16));
  return words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

export function summarizePacket(bytes: Buffer): PacketSummary | undefined {
  if (bytes.length < 1) return undefined;
  const version = bytes[0]! >> 4;
  let proto: number;
  let l4: number;
  let ipPayload: number;
  let src: string;
  let dst: string;
  if (version === 4 && bytes.length >= 20) {
    const ihl = (bytes[0]! & 0x0f) * 4;
    proto = bytes[9]!;
    l4 = ihl;
    ipPayload = bytes.readUInt16BE(2) - ihl;
    src = [...bytes.subarray(12, 16)].join('.');
    dst = [...bytes.subarray(16, 20)].join('.');
  } else if (version === 6 && bytes.length >= 40) {
    proto = bytes[6]!;
    l4 = 40;
    // Hop-by-hop options (MLD reports carry one); other extension headers are reported by their number.
    if (proto === HOP_BY_HOP && bytes.length >= 48) {
      proto = bytes[40]!;
      l4 = 40 + (bytes[41]! + 1) * 8;
    }
    ipPayload = bytes.readUInt16BE(4);
    src = ipv6(bytes, 8);
    dst = ipv6(bytes, 24);
  } else {
    return undefined;
  }
  const names: Record<number, string> = { [TCP]: 'TCP', [UDP]: 'UDP', [ICMP]: 'ICMP', [ICMPV6]: 'ICMPv6' };
  const summary: PacketSummary = { protocol: names[proto] ?? `proto ${proto}`, src, dst };
  if (proto === TCP && bytes.length >= l4 + 14) {
    const dataOffset = (bytes[l4 + 12]! >> 4) * 4;
    const f = bytes[l4 + 13]!;
    summary.srcPort = bytes.readUInt16BE(l4);
    summary.dstPort = bytes.readUInt16BE(l4 + 2);
    summary.seq = bytes.readUInt32BE(l4 + 4);
    summary.ack = bytes.readUInt32BE(l4 + 8);
    summary.flags = [[2, 'S'], [1, 'F'], [4, 'R'], [8, 'P'], [16, 'A'], [32, 'U']]
      .filter(([bit]) => f & (bit as number))
      .map(([, letter]) => letter)
      .join('');
    summary.payloadBytes = Math.max(0, ipPayload - dataOffset);
  } else if (proto === UDP && bytes.length >= l4 + 8) {
    summary.srcPort = bytes.readUInt16BE(l4);
    summary.dstPort = bytes.readUInt16BE(l4 + 2);
    summary.payloadBytes = Math.max(0, ipPayload - 8);
  } else if ((proto === ICMP || proto === ICMPV6) && bytes.length > l4) {
    summary.icmpType = bytes[l4]!;
  }
  return summary;
}

export function formatPacketSummary(s: PacketSummary): string {
  const host = (addr: string, port?: number) => (port === undefined ? addr : addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);
  let line = `${s.protocol} ${host(s.src, s.srcPort)} > ${host(s.dst, s.dstPort)}`;
  if (s.flags !== undefined) line += ` [${s.flags}] seq ${s.seq} ack ${s.ack}`;
  if (s.payloadBytes !== undefined) line += ` len ${s.payloadBytes}`;
  if (s.icmpType !== undefined) line += ` type ${s.icmpType}`;
  return line;
}
