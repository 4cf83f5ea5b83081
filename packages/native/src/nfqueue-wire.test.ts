import {
  NfInetHook,
  NfVerdict,
  decodeMessages,
  decodeVerdictMessage,
  encodeAck,
  encodeBind,
  encodePacketMessage,
  encodeParams,
  encodeVerdictBatch,
} from './nfqueue-wire';

// Bytes as the kernel's nfnetlink_queue expects them on x86-64 (host-order netlink headers, big-endian payloads).
describe('nfqueue wire format', () => {
  test('bind: NFQNL_MSG_CONFIG with NFQNL_CFG_CMD_BIND, queue number big-endian in res_id, ack requested', () => {
    const msg = encodeBind(0x1234, 7);
    expect(msg.toString('hex')).toBe(
      [
        '1c000000', // nlmsg_len 28
        '0203', // type: NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG
        '0500', // NLM_F_REQUEST | NLM_F_ACK
        '07000000', // seq
        '00000000', // pid
        '00', '00', '1234', // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id (be16)
        '0800', '0100', // nla_len 8, NFQA_CFG_CMD
        '01', '00', '0000', // cmd BIND, pad, pf
      ].join(''),
    );
  });

  test('params: copy mode and range, max length, GSO flag with its mask', () => {
    const msg = encodeParams(1, 2, { copyMode: 2, copyRange: 128, maxLen: 8192, flags: 4 });
    const hex = msg.toString('hex');
    expect(hex).toContain('09000200' + '00000080' + '02' + '000000'); // NFQA_CFG_PARAMS, padded to 12
    expect(hex).toContain('08000300' + '00002000'); // NFQA_CFG_QUEUE_MAXLEN
    expect(hex).toContain('08000500' + '00000004'); // NFQA_CFG_FLAGS
    expect(hex).toContain('08000400' + '00000004'); // NFQA_CFG_MASK
    expect(msg.readUInt32LE(0)).toBe(msg.length);
  });

  test('verdict batch round-trips: accept everything up to an id', () => {
    const msg = encodeVerdictBatch(42, 9, 0xfffffffe, NfVerdict.ACCEPT);
    expect(decodeVerdictMessage(msg)).toEqual({ msgType: 3, queueNum: 42, seq: 9, verdict: 1, id: 0xfffffffe });
  });

  test('decodes packets and acks packed in one datagram', () => {
    const payload = Buffer.from('4500001c', 'hex');
    const datagram = Buffer.concat([
      encodePacketMessage(5, { id: 3, hook: NfInetHook.LOCAL_IN, hwProtocol: 0x0800, inIfindex: 2, payload, capturedFrom: 60 }),
      encodeAck(4, 0),
      encodeAck(5, 16),
      encodePacketMessage(5, { id: 4, hook: NfInetHook.LOCAL_OUT, hwProtocol: 0x86dd, outIfindex: 2 }),
    ]);
    expect(decodeMessages(datagram)).toEqual([
      { kind: 'packet', packet: { id: 3, hook: 1, hwProtocol: 0x0800, inIfindex: 2, payload, capturedFrom: 60 } },
      { kind: 'ack', seq: 4, errno: 0 },
      { kind: 'ack', seq: 5, errno: 16 },
      { kind: 'packet', packet: { id: 4, hook: 3, hwProtocol: 0x86dd, outIfindex: 2 } },
    ]);
  });

  test('a truncated datagram yields the whole messages before the cut', () => {
    const one = encodeAck(1, 0);
    expect(decodeMessages(Buffer.concat([one, one.subarray(0, 10)]))).toEqual([{ kind: 'ack', seq: 1, errno: 0 }]);
  });
});
