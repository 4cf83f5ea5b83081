import { formatPacketSummary, summarizePacket } from './describe-packet';

describe('summarizePacket', () => {
  test('an IPv4 TCP segment with flags, sequence numbers and payload length', () => {
    // 10.77.0.1:43568 > 10.77.0.9:8080, seq 8290, ack 15397, PSH|ACK, 20-byte TCP header, 9 bytes of data.
    const ip = Buffer.from('450000310000400040060000' + '0a4d0001' + '0a4d0009', 'hex');
    const tcp = Buffer.from('aa301f90' + '00002062' + '00003c25' + '5018' + '0200' + '00000000', 'hex');
    const s = summarizePacket(Buffer.concat([ip, tcp]))!;
    expect(s).toEqual({ protocol: 'TCP', src: '10.77.0.1', dst: '10.77.0.9', srcPort: 43568, dstPort: 8080, flags: 'PA', seq: 8290, ack: 15397, payloadBytes: 9 });
    expect(formatPacketSummary(s)).toBe('TCP 10.77.0.1:43568 > 10.77.0.9:8080 [PA] seq 8290 ack 15397 len 9');
  });

  test('an MLD report: the hop-by-hop header is skipped', () => {
    const v6 = Buffer.alloc(56);
    v6[0] = 0x60;
    v6.writeUInt16BE(16, 4);
    v6[6] = 0; // hop-by-hop
    v6[24] = 0xff;
    v6[25] = 0x02;
    v6[39] = 0x16; // ff02::16
    v6[40] = 58; // next: ICMPv6
    v6[41] = 0; // 8 bytes of options
    v6[48] = 143; // MLDv2 report
    expect(formatPacketSummary(summarizePacket(v6)!)).toBe('ICMPv6 :: > ff02::16 type 143');
  });

  test('an IPv6 ICMPv6 packet and a truncated one', () => {
    const v6 = Buffer.alloc(41);
    v6[0] = 0x60;
    v6.writeUInt16BE(8, 4);
    v6[6] = 58;
    v6[23] = 1; // src ::1
    v6[24] = 0xfe;
    v6[25] = 0x80;
    v6[39] = 2; // dst fe80::2
    v6[40] = 135;
    expect(formatPacketSummary(summarizePacket(v6)!)).toBe('ICMPv6 ::1 > fe80::2 type 135');
    expect(summarizePacket(Buffer.from('45', 'hex'))).toBeUndefined();
  });
});
