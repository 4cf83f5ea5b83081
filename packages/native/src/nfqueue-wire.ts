// The nfnetlink_queue wire format (linux/netfilter/nfnetlink_queue.h), encoded and decoded in TypeScript so that the
// C++ side stays a plain socket. Netlink and attribute headers are in host byte order; the queue's own fields
// (queue number, packet ids, verdicts, lengths) are big-endian.
import { endianness } from 'node:os';

export const NETLINK_NETFILTER = 12;

const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;
const NLA_HDRLEN = 4;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NFNETLINK_V0 = 0;
const AF_UNSPEC = 0;
const NFNL_SUBSYS_QUEUE = 3;

export const NfqnlMsg = { PACKET: 0, VERDICT: 1, CONFIG: 2, VERDICT_BATCH: 3 } as const;
const NfqnlCfgCmd = { BIND: 1, UNBIND: 2 } as const;
const NfqaCfg = { CMD: 1, PARAMS: 2, QUEUE_MAXLEN: 3, MASK: 4, FLAGS: 5 } as const;
/** Attributes of a queued-packet message. */
const Nfqa = { PACKET_HDR: 1, VERDICT_HDR: 2, IFINDEX_INDEV: 5, IFINDEX_OUTDEV: 6, PAYLOAD: 10, CAP_LEN: 13 } as const;
export const NfqnlCopy = { NONE: 0, META: 1, PACKET: 2 } as const;
/** NFQA_CFG_F_*: only GSO is used (queue GSO packets whole instead of segmenting them first). FAIL_OPEN never is. */
export const NfqaCfgFlag = { FAIL_OPEN: 1, CONNTRACK: 2, GSO: 4 } as const;
/** NF_DROP / NF_ACCEPT. */
export const NfVerdict = { DROP: 0, ACCEPT: 1 } as const;
export type NfVerdictValue = (typeof NfVerdict)[keyof typeof NfVerdict];
/** Netfilter hooks of the inet family: where a queued packet was taken. */
export const NfInetHook = { PRE_ROUTING: 0, LOCAL_IN: 1, FORWARD: 2, LOCAL_OUT: 3, POST_ROUTING: 4 } as const;

const LE = endianness() === 'LE';

/** One packet the kernel queued and holds until it gets a verdict for `id`. */
export interface QueuedPacket {
  /** Per-queue, increasing in arrival order. */
  id: number;
  /** NfInetHook value. */
  hook: number;
  /** Ethertype of the packet (0x0800 IPv4, 0x86dd IPv6). */
  hwProtocol: number;
  inIfindex?: number;
  outIfindex?: number;
  /** The first copyRange bytes of the packet, from its network header on (with copy mode PACKET). */
  payload?: Buffer;
  /** The packet's full length when payload was cut short. */
  capturedFrom?: number;
}

/** A decoded netlink message: a queued packet, an ack/error for request `seq`, or something else. */
export type NfqueueMessage =
  | { kind: 'packet'; packet: QueuedPacket }
  | { kind: 'ack'; seq: number; errno: number }
  | { kind: 'other'; type: number; seq: number };

function u16(buf: Buffer, offset: number, value: number): void {
  if (LE) buf.writeUInt16LE(value, offset);
  else buf.writeUInt16BE(value, offset);
}
function u32(buf: Buffer, offset: number, value: number): void {
  if (LE) buf.writeUInt32LE(value, offset);
  else buf.writeUInt32BE(value, offset);
}
const readU16 = (buf: Buffer, offset: number) => (LE ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset));
const readU32 = (buf: Buffer, offset: number) => (LE ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset));
const readS32 = (buf: Buffer, offset: number) => (LE ? buf.readInt32LE(offset) : buf.readInt32BE(offset));
const align4 = (n: number) => (n + 3) & ~3;

function attr(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(align4(NLA_HDRLEN + value.length));
  u16(out, 0, NLA_HDRLEN + value.length);
  u16(out, 2, type);
  value.copy(out, NLA_HDRLEN);
  return out;
}

function be32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/**
 * nlmsghdr + nfgenmsg (queue number in res_id) + attributes: a request, with an ack asked for unless `ack` is false
 * (the kernel then answers only a failure).
 */
function message(msgType: number, queueNum: number, seq: number, attrs: Buffer[], ack = true): Buffer {
  const body = Buffer.concat(attrs);
  const out = Buffer.alloc(NLMSG_HDRLEN + NFGENMSG_LEN + body.length);
  u32(out, 0, out.length);
  u16(out, 4, (NFNL_SUBSYS_QUEUE << 8) | msgType);
  u16(out, 6, NLM_F_REQUEST | (ack ? NLM_F_ACK : 0));
  u32(out, 8, seq);
  u32(out, 12, 0);
  out.writeUInt8(AF_UNSPEC, 16);
  out.writeUInt8(NFNETLINK_V0, 17);
  out.writeUInt16BE(queueNum, 18);
  body.copy(out, NLMSG_HDRLEN + NFGENMSG_LEN);
  return out;
}

/** NFQNL_CFG_CMD_BIND / UNBIND of `queueNum` to this socket. */
export function encodeBind(queueNum: number, seq: number, bind = true): Buffer {
  const cmd = Buffer.alloc(4); // struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
  cmd.writeUInt8(bind ? NfqnlCfgCmd.BIND : NfqnlCfgCmd.UNBIND, 0);
  return message(NfqnlMsg.CONFIG, queueNum, seq, [attr(NfqaCfg.CMD, cmd)]);
}

export interface QueueParams {
  copyMode: number;
  copyRange: number;
  maxLen: number;
  /** NfqaCfgFlag bits to set; the mask covers exactly these, so other flags keep the kernel's default (off). */
  flags: number;
}

/** Copy mode and range, queue length limit and flags of `queueNum`, in one config message. */
export function encodeParams(queueNum: number, seq: number, params: QueueParams): Buffer {
  const p = Buffer.alloc(5); // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
  p.writeUInt32BE(params.copyRange, 0);
  p.writeUInt8(params.copyMode, 4);
  const attrs = [attr(NfqaCfg.PARAMS, p), attr(NfqaCfg.QUEUE_MAXLEN, be32(params.maxLen))];
  if (params.flags !== 0) attrs.push(attr(NfqaCfg.FLAGS, be32(params.flags)), attr(NfqaCfg.MASK, be32(params.flags)));
  return message(NfqnlMsg.CONFIG, queueNum, seq, attrs);
}

/**
 * Queue length 0 with NFQA_CFG_F_FAIL_OPEN: every packet that hits the rule from now on finds the queue "full" and
 * is accepted by the kernel on the spot, without a notification. Packets already queued keep waiting for verdicts.
 */
export function encodeFailOpen(queueNum: number, seq: number): Buffer {
  return message(NfqnlMsg.CONFIG, queueNum, seq, [
    attr(NfqaCfg.QUEUE_MAXLEN, be32(0)),
    attr(NfqaCfg.FLAGS, be32(NfqaCfgFlag.FAIL_OPEN)),
    attr(NfqaCfg.MASK, be32(NfqaCfgFlag.FAIL_OPEN)),
  ]);
}

function verdictHdr(verdict: NfVerdictValue, id: number): Buffer {
  const v = Buffer.alloc(8); // struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }
  v.writeUInt32BE(verdict, 0);
  v.writeUInt32BE(id >>> 0, 4);
  return attr(Nfqa.VERDICT_HDR, v);
}

/** The verdict for one packet. */
export function encodeVerdict(queueNum: number, seq: number, id: number, verdict: NfVerdictValue): Buffer {
  return message(NfqnlMsg.VERDICT, queueNum, seq, [verdictHdr(verdict, id)]);
}

/** The verdict for every queued packet with an id up to `maxId`, applied by the kernel in queue (arrival) order. */
export function encodeVerdictBatch(queueNum: number, seq: number, maxId: number, verdict: NfVerdictValue, ack = true): Buffer {
  return message(NfqnlMsg.VERDICT_BATCH, queueNum, seq, [verdictHdr(verdict, maxId)], ack);
}

/** Every netlink message in one datagram. Malformed trailing bytes are ignored (the kernel never sends them). */
export function decodeMessages(datagram: Buffer): NfqueueMessage[] {
  const out: NfqueueMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= datagram.length) {
    const len = readU32(datagram, offset);
    if (len < NLMSG_HDRLEN || offset + len > datagram.length) break;
    const type = readU16(datagram, offset + 4);
    const seq = readU32(datagram, offset + 8);
    const body = datagram.subarray(offset + NLMSG_HDRLEN, offset + len);
    if (type === NLMSG_ERROR) {
      // struct nlmsgerr { int error; struct nlmsghdr msg; ... }: error is 0 for an ack, -errno for a failure.
      out.push({ kind: 'ack', seq, errno: body.length >= 4 ? Math.abs(readS32(body, 0)) : 0 });
    } else if (type === ((NFNL_SUBSYS_QUEUE << 8) | NfqnlMsg.PACKET)) {
      const packet = decodePacket(body.subarray(NFGENMSG_LEN));
      if (packet) out.push({ kind: 'packet', packet });
    } else if (type !== NLMSG_DONE) {
      out.push({ kind: 'other', type, seq });
    }
    offset += align4(len);
  }
  return out;
}

function decodePacket(attrs: Buffer): QueuedPacket | undefined {
  let packet: QueuedPacket | undefined;
  const extra: Partial<QueuedPacket> = {};
  let offset = 0;
  while (offset + NLA_HDRLEN <= attrs.length) {
    const len = readU16(attrs, offset);
    const type = readU16(attrs, offset + 2) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (len < NLA_HDRLEN || offset + len > attrs.length) break;
    const value = attrs.subarray(offset + NLA_HDRLEN, offset + len);
    switch (type) {
      case Nfqa.PACKET_HDR: // struct nfqnl_msg_packet_hdr { be32 packet_id; be16 hw_protocol; u8 hook; }
        if (value.length >= 7) packet = { id: value.readUInt32BE(0), hwProtocol: value.readUInt16BE(4), hook: value.readUInt8(6) };
        break;
      case Nfqa.IFINDEX_INDEV:
        if (value.length >= 4) extra.inIfindex = value.readUInt32BE(0);
        break;
      case Nfqa.IFINDEX_OUTDEV:
        if (value.length >= 4) extra.outIfindex = value.readUInt32BE(0);
        break;
      case Nfqa.PAYLOAD:
        extra.payload = Buffer.from(value);
        break;
      case Nfqa.CAP_LEN:
        if (value.length >= 4) extra.capturedFrom = value.readUInt32BE(0);
        break;
    }
    offset += align4(len);
  }
  return packet ? { ...packet, ...extra } : undefined;
}

/**
 * Encodes a PACKET message as the kernel would send it: for tests of the decoder and of code that consumes queued
 * packets without a kernel.
 */
export function encodePacketMessage(queueNum: number, packet: QueuedPacket): Buffer {
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(packet.id >>> 0, 0);
  hdr.writeUInt16BE(packet.hwProtocol, 4);
  hdr.writeUInt8(packet.hook, 6);
  const attrs = [attr(Nfqa.PACKET_HDR, hdr)];
  if (packet.inIfindex !== undefined) attrs.push(attr(Nfqa.IFINDEX_INDEV, be32(packet.inIfindex)));
  if (packet.outIfindex !== undefined) attrs.push(attr(Nfqa.IFINDEX_OUTDEV, be32(packet.outIfindex)));
  if (packet.capturedFrom !== undefined) attrs.push(attr(Nfqa.CAP_LEN, be32(packet.capturedFrom)));
  if (packet.payload) attrs.push(attr(Nfqa.PAYLOAD, packet.payload));
  const out = message(NfqnlMsg.PACKET, queueNum, 0, attrs);
  u16(out, 6, 0); // the kernel's notifications carry no request flags
  return out;
}

/** An NLMSG_ERROR answer to request `seq` (errno 0: an ack). For tests. */
export function encodeAck(seq: number, errno: number): Buffer {
  const out = Buffer.alloc(NLMSG_HDRLEN + 4 + NLMSG_HDRLEN);
  u32(out, 0, out.length);
  u16(out, 4, NLMSG_ERROR);
  u32(out, 8, seq);
  if (LE) out.writeInt32LE(-errno, NLMSG_HDRLEN);
  else out.writeInt32BE(-errno, NLMSG_HDRLEN);
  return out;
}

/** Reads a u32 verdict header back out of an encoded VERDICT/VERDICT_BATCH message (tests, fakes). */
export function decodeVerdictMessage(buf: Buffer): { msgType: number; queueNum: number; seq: number; verdict: number; id: number } {
  const type = readU16(buf, 4);
  const seq = readU32(buf, 8);
  const queueNum = buf.readUInt16BE(18);
  const a = NLMSG_HDRLEN + NFGENMSG_LEN;
  if (readU16(buf, a + 2) !== Nfqa.VERDICT_HDR) throw new Error('not a verdict message');
  return { msgType: type & 0xff, queueNum, seq, verdict: buf.readUInt32BE(a + NLA_HDRLEN), id: buf.readUInt32BE(a + NLA_HDRLEN + 4) };
}
