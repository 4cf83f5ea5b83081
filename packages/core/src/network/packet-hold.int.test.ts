// The packet hold against the real kernel (root): a namespace plugged into a bridge, UDP through it both ways.
// UDP is never retransmitted, so what arrives (and in which order) shows exactly what the hold let through.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createNetnsLab, LineLog, netFixture, snmpCounter, type NetnsLab } from '../testing/netns-lab';
import { holdNetnsTraffic, liftPacketHold, PacketHold, resolveNetfilterTools, type PacketHoldRecord } from './index';

const PREFIX = /^[a-z]{1,8}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? process.env.FERRY_E2E_PREFIX! : 'ferryint';
const SEARCH_PATH = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
const PORT = 9000;
const root = process.getuid?.() === 0;
const maybe = root ? describe : describe.skip;
if (!root) console.log('packet-hold.int.test.ts skipped: needs root (network namespaces, iptables, NFQUEUE)');

jest.setTimeout(60_000);

maybe('PacketHold (real NFQUEUE in a network namespace)', () => {
  let lab: NetnsLab;
  const holds: PacketHold[] = [];
  beforeEach(async () => {
    lab = await createNetnsLab(PREFIX);
  });
  afterEach(async () => {
    for (const hold of holds.splice(0)) await hold.abort().catch(() => undefined);
    await lab.remove();
  });
  const track = (hold: PacketHold) => (holds.push(hold), hold);

  const sink = async (nsPath: string, address: string) => {
    const log = new LineLog(lab.spawnIn(nsPath, [process.execPath, netFixture('udp-sink'), address, String(PORT)]));
    await log.waitFor(/^bound$/);
    return log;
  };
  const send = async (nsPath: string, to: string, from: number, last: number) => {
    const child = lab.spawnIn(nsPath, [process.execPath, netFixture('udp-send'), to, String(PORT), String(from), String(last)]);
    await new Promise((resolve) => child.on('exit', resolve));
  };
  const numbers = (log: LineLog) => log.lines.filter((l) => /^\d+$/.test(l)).map(Number);
  const waitHeld = async (hold: PacketHold, count: number) => {
    for (let i = 0; i < 3000 && hold.heldCount < count; i++) await new Promise((r) => setTimeout(r, 10));
    expect(hold.heldCount).toBe(count);
  };
  const rules = (nsPath: string) => lab.exec(nsPath, ['iptables', '-S']);

  test('holds both directions, lets nothing through before release, then delivers everything in order', async () => {
    const atServer = await sink(lab.serverPath, lab.serverAddress);
    const atClient = await sink(lab.lanPath, lab.clientAddress);
    let journaled: PacketHoldRecord | undefined;
    const hold = track(await holdNetnsTraffic({ netnsPath: lab.serverPath, searchPath: SEARCH_PATH, onRecord: (r) => void (journaled = r) }));
    expect(journaled).toEqual(hold.record);
    expect(await rules(lab.serverPath)).toContain(`-j ${hold.record.chain}`);
    const receivedBefore = await snmpCounter(lab, lab.serverPath, 'Udp', 'InDatagrams');

    await send(lab.lanPath, lab.serverAddress, 1, 20);
    await send(lab.serverPath, lab.clientAddress, 101, 110);
    await waitHeld(hold, 30);
    expect(numbers(atServer)).toEqual([]);
    expect(numbers(atClient)).toEqual([]);
    expect(await snmpCounter(lab, lab.serverPath, 'Udp', 'InDatagrams')).toBe(receivedBefore);

    const result = await hold.release();
    expect(result).toMatchObject({ outcome: 'released', held: { inbound: 20, outbound: 10, forwarded: 0 }, netnsGone: false, lostNotifications: 0, passThrough: true });
    expect(result.first[0]).toMatch(/^in UDP 10\.123\.0\.1:\d+ > 10\.123\.0\.2:9000 len 1$/);
    await atServer.waitFor(/^20$/);
    await atClient.waitFor(/^110$/);
    expect(numbers(atServer)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(numbers(atClient)).toEqual(Array.from({ length: 10 }, (_, i) => i + 101));
    expect(await rules(lab.serverPath)).not.toContain('FERRY-HOLD');
    // Traffic flows without the hold now.
    await send(lab.lanPath, lab.serverAddress, 21, 21);
    await atServer.waitFor(/^21$/);

    expect(await hold.release()).toBe(result);
    expect(await hold.abort()).toBe(result);
    expect(hold.state).toBe('released');
  });

  test('abort drops what it held; traffic after the abort flows', async () => {
    const atServer = await sink(lab.serverPath, lab.serverAddress);
    const hold = track(await holdNetnsTraffic({ netnsPath: lab.serverPath, searchPath: SEARCH_PATH }));
    await send(lab.lanPath, lab.serverAddress, 1, 10);
    await waitHeld(hold, 10);
    const result = await hold.abort();
    expect(result).toMatchObject({ outcome: 'aborted', held: { inbound: 10 } });
    await send(lab.lanPath, lab.serverAddress, 11, 12);
    await atServer.waitFor(/^12$/);
    expect(numbers(atServer)).toEqual([11, 12]);
    await expect(hold.release()).rejects.toMatchObject({ code: 'ERR_NETWORK_HOLD_ABORTED' });
    expect(await rules(lab.serverPath)).not.toContain('FERRY-HOLD');
  });

  test('a holder that dies leaves the namespace cut off; the journal record lifts the hold or adopts it', async () => {
    const dist = join(__dirname, '..', '..', 'dist', 'index.js');
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npx tsc -b\` first`);
    const atServer = await sink(lab.serverPath, lab.serverAddress);
    // Another process holds, prints its record, and is SIGKILLed: no verdict, no clean-up.
    const holder = spawn(process.execPath, [
      '-e',
      `require(${JSON.stringify(dist)}).holdNetnsTraffic({ netnsPath: ${JSON.stringify(lab.serverPath)}, searchPath: ${JSON.stringify(SEARCH_PATH)} })` +
        `.then((h) => process.stdout.write(JSON.stringify(h.record) + '\\n'), (e) => { console.error(e); process.exit(1); })`,
    ]);
    const record = JSON.parse(await new LineLog(holder).waitFor(/^\{/)) as PacketHoldRecord;
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));

    await send(lab.lanPath, lab.serverAddress, 1, 5); // nobody bound to the queue: dropped, not let through
    const adopted = track(await PacketHold.adopt({ record, tools: await resolveNetfilterTools(SEARCH_PATH, record.variant) }));
    await send(lab.lanPath, lab.serverAddress, 6, 6);
    await waitHeld(adopted, 1);
    await adopted.release();
    await atServer.waitFor(/^6$/);
    expect(numbers(atServer)).toEqual([6]);

    // The same record lifts a hold that nobody adopted (here: install it again, then lift from "another process").
    const again = track(await PacketHold.adopt({ record, tools: await resolveNetfilterTools(SEARCH_PATH, record.variant) }));
    await send(lab.lanPath, lab.serverAddress, 7, 7);
    await waitHeld(again, 1);
    expect(await liftPacketHold(record, SEARCH_PATH)).toBe('removed');
    expect(await liftPacketHold(record, SEARCH_PATH)).toBe('removed'); // idempotent
    await send(lab.lanPath, lab.serverAddress, 8, 8);
    await atServer.waitFor(/^8$/);
    await again.abort(); // drops 7, which was still queued; the rules are gone already
    expect(numbers(atServer)).toEqual([6, 8]);
    await lab.remove();
    expect(await liftPacketHold(record, SEARCH_PATH)).toBe('gone');
  });
});
