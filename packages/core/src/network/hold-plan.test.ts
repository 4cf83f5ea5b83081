import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installScript, isPacketHoldRecord, parseHoldListing, planPacketHold, removeScript, type PacketHoldRecord } from './hold-plan';

describe('planPacketHold and the rules it stands for', () => {
  let dir: string;
  let ns: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hold-plan-'));
    ns = join(dir, 'netns'); // any file stands in for an nsfs path: the plan only records its identity
    writeFileSync(ns, '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const plan = (extra: Partial<Parameters<typeof planPacketHold>[0]> = {}) =>
    planPacketHold({ netnsPath: ns, variant: 'nf_tables', id: '0a1b2c3d', queueNum: 17000, ...extra });

  test('a record names the namespace by path and identity, and is recognised after a JSON round trip', () => {
    const record = plan();
    expect(record).toMatchObject({ kind: 'nfqueue-hold', version: 1, chain: 'FERRY-HOLD-0a1b2c3d', queueNum: 17000, interfaces: [], families: ['ipv4', 'ipv6'] });
    expect(record.netns.ino).toBeGreaterThan(0);
    expect(isPacketHoldRecord(JSON.parse(JSON.stringify(record)))).toBe(true);
    expect(isPacketHoldRecord({ ...record, chain: 'INPUT' })).toBe(false);
    expect(isPacketHoldRecord({ ...record, interfaces: ['eth0; rm -rf /'] })).toBe(false);
  });

  test('random ids and queue numbers stay in range', () => {
    for (let i = 0; i < 50; i++) {
      const r = planPacketHold({ netnsPath: ns, variant: 'legacy' });
      expect(r.id).toMatch(/^[0-9a-f]{8}$/);
      expect(r.queueNum).toBeGreaterThanOrEqual(0x4000);
      expect(r.queueNum).toBeLessThanOrEqual(0xffff);
    }
  });

  test('bad input is refused with a ferry error', () => {
    expect(() => plan({ netnsPath: 'relative' })).toThrow(/not absolute/);
    expect(() => plan({ interfaces: ['lo'] })).toThrow(/cannot name a held interface/);
    expect(() => plan({ interfaces: ['a b'] })).toThrow(/cannot name a held interface/);
    expect(() => plan({ queueNum: 70000 })).toThrow(/not in 0..65535/);
    expect(() => plan({ netnsPath: join(dir, 'missing') })).toThrow(expect.objectContaining({ code: 'ERR_NETWORK_HOLD_FAILED' }));
  });

  test('install: one transaction with the chain, the queue without bypass, and jumps first in INPUT, FORWARD, OUTPUT', () => {
    expect(installScript(plan(), 'ipv4', '-P INPUT ACCEPT\n')).toBe(
      [
        '*filter',
        ':FERRY-HOLD-0a1b2c3d - [0:0]',
        '-A FERRY-HOLD-0a1b2c3d -j NFQUEUE --queue-num 17000',
        '-I INPUT 1 ! -i lo -j FERRY-HOLD-0a1b2c3d',
        '-I FORWARD 1 -j FERRY-HOLD-0a1b2c3d',
        '-I OUTPUT 1 ! -o lo -j FERRY-HOLD-0a1b2c3d',
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(installScript(plan(), 'ipv6', '')).toContain('-A FERRY-HOLD-0a1b2c3d -p ipv6-icmp --icmpv6-type neighbour-solicitation -j RETURN');
    expect(installScript(plan(), 'ipv4', '')).not.toMatch(/bypass|icmpv6/);
  });

  test('install again: the jumps already there are not inserted twice; named interfaces get their own jumps', () => {
    const record: PacketHoldRecord = plan({ interfaces: ['eth0'] });
    const listing = ['-N FERRY-HOLD-0a1b2c3d', '-A INPUT -i eth0 -j FERRY-HOLD-0a1b2c3d', '-A FERRY-HOLD-0a1b2c3d -j NFQUEUE --queue-num 17000'].join('\n');
    const script = installScript(record, 'ipv4', listing);
    expect(script).not.toContain('-I INPUT');
    expect(script).toContain('-I FORWARD 1 -i eth0 -j FERRY-HOLD-0a1b2c3d\n-I FORWARD 1 -o eth0 -j FERRY-HOLD-0a1b2c3d\n-I OUTPUT 1 -o eth0');
  });

  test('remove: deletes exactly the listed jumps (twice if inserted twice), then the chain; nothing there: no script', () => {
    const record = plan();
    const listing = [
      '-P INPUT ACCEPT',
      '-N FERRY-HOLD-0a1b2c3d',
      '-N FERRY-HOLD-ffffffff',
      '-A INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d',
      '-A INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d',
      '-A INPUT ! -i lo -j FERRY-HOLD-ffffffff',
      '-A OUTPUT ! -o lo -j FERRY-HOLD-0a1b2c3d',
      '-A FERRY-HOLD-0a1b2c3d -j NFQUEUE --queue-num 17000',
    ].join('\n');
    expect(parseHoldListing(listing, record)).toEqual({ chain: true, jumps: ['-A INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d', '-A INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d', '-A OUTPUT ! -o lo -j FERRY-HOLD-0a1b2c3d'] });
    expect(removeScript(record, listing)).toBe(
      ['*filter', '-D INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d', '-D INPUT ! -i lo -j FERRY-HOLD-0a1b2c3d', '-D OUTPUT ! -o lo -j FERRY-HOLD-0a1b2c3d', '-F FERRY-HOLD-0a1b2c3d', '-X FERRY-HOLD-0a1b2c3d', 'COMMIT', ''].join('\n'),
    );
    expect(removeScript(record, '-P INPUT ACCEPT\n-N FERRY-HOLD-ffffffff\n')).toBeUndefined();
  });
});
