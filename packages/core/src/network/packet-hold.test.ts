import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NfInetHook, NfVerdict, type QueuedPacket } from '@ferry/native';
import { planPacketHold } from './hold-plan';
import type { NetfilterTools, ToolRunner } from './hold-rules';
import { PacketHold, type HoldQueue, type OpenHoldQueue } from './packet-hold';

// The hold's logic against a fake kernel queue and a fake iptables: which verdicts it gives, when, and what it
// does when removing the rules fails. packet-hold.int.test.ts runs the real thing.
const tools: NetfilterTools = {
  nsenterPath: '/usr/bin/nsenter',
  variant: 'nf_tables',
  iptables: { ipv4: { list: 'iptables', restore: 'iptables-restore' }, ipv6: { list: 'ip6tables', restore: 'ip6tables-restore' } },
};

function fakeKernel() {
  const verdicts: { maxId: number; verdict: number; state: string }[] = [];
  let onPacket: (p: QueuedPacket) => void = () => undefined;
  let hold: PacketHold | undefined;
  let closed = false;
  let passThrough = false;
  let passThroughFails = false;
  const queued = new Set<number>();
  const queue: HoldQueue = {
    lostNotifications: 0,
    async verdictBatch(maxId, verdict) {
      verdicts.push({ maxId, verdict, state: hold!.state });
      const hit = [...queued].filter((id) => id <= maxId);
      if (hit.length === 0) throw Object.assign(new Error('ENOENT'), { errno: 2 });
      for (const id of hit) queued.delete(id);
    },
    async passThrough() {
      verdicts.push({ maxId: -1, verdict: -1, state: hold!.state });
      if (passThroughFails) throw Object.assign(new Error('EINVAL'), { errno: 22 });
      passThrough = true;
    },
    close: () => void (closed = true),
  };
  const open: OpenHoldQueue = async (o) => ((onPacket = o.onPacket), queue);
  let listing = '';
  let failRemoval = 0;
  const scripts: string[] = [];
  const run: ToolRunner = async (_file, args, input) => {
    if (args.includes('-S')) return { code: 0, stdout: listing, stderr: '' };
    if (input?.includes('-X') && failRemoval > 0) {
      failRemoval--;
      return { code: 4, stdout: '', stderr: 'Resource temporarily unavailable' };
    }
    scripts.push(input ?? '');
    listing = input?.includes(':FERRY-HOLD') ? input.replace(/^-I (\w+) 1 /gm, '-A $1 ').replace(/^:(\S+).*$/m, '-N $1') : '';
    return { code: 0, stdout: '', stderr: '' };
  };
  return {
    verdicts,
    scripts,
    open,
    run,
    attach: (h: PacketHold) => void (hold = h),
    packet(id: number, hook: number = NfInetHook.LOCAL_IN) {
      if (passThrough) return; // the kernel accepts it itself
      queued.add(id);
      onPacket({ id, hook, hwProtocol: 0x0800 });
    },
    get passThrough() {
      return passThrough;
    },
    failNextRemovals: (n: number) => void (failRemoval = n),
    refusePassThrough: () => void (passThroughFails = true),
    get closed() {
      return closed;
    },
  };
}

describe('PacketHold', () => {
  let dir: string;
  let ns: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'packet-hold-'));
    ns = join(dir, 'netns');
    writeFileSync(ns, '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start() {
    const kernel = fakeKernel();
    const record = planPacketHold({ netnsPath: ns, variant: 'nf_tables', families: ['ipv4'] });
    const hold = await PacketHold.start({ record, tools, run: kernel.run, openQueue: kernel.open });
    kernel.attach(hold);
    return { kernel, hold };
  }

  test('gives no verdict while holding; release accepts up to the last held id, in one batch, then closes', async () => {
    const { kernel, hold } = await start();
    expect(kernel.scripts[0]).toContain('-j NFQUEUE');
    kernel.packet(1);
    kernel.packet(2, NfInetHook.LOCAL_OUT);
    kernel.packet(3, NfInetHook.FORWARD);
    expect(kernel.verdicts).toEqual([]);
    const result = await hold.release();
    expect(kernel.verdicts[0]).toEqual({ maxId: 3, verdict: NfVerdict.ACCEPT, state: 'releasing' });
    expect(kernel.verdicts[1]).toEqual({ maxId: -1, verdict: -1, state: 'releasing' }); // pass-through, right behind
    expect(kernel.verdicts.every((v) => (v.verdict === NfVerdict.ACCEPT || v.maxId === -1) && v.state === 'releasing')).toBe(true);
    expect(result.passThrough).toBe(true);
    expect(result).toMatchObject({ outcome: 'released', held: { inbound: 1, outbound: 1, forwarded: 1 }, late: 0, netnsGone: false });
    expect(kernel.scripts.at(-1)).toContain('-X FERRY-HOLD-');
    expect(kernel.closed).toBe(true);
    expect(hold.state).toBe('released');
  });

  test('asked twice, release gives the same result; abort afterwards changes nothing', async () => {
    const { kernel, hold } = await start();
    kernel.packet(1);
    const [a, b] = await Promise.all([hold.release(), hold.release()]);
    expect(a).toBe(b);
    expect(await hold.abort()).toBe(a);
    expect(kernel.verdicts.filter((v) => v.verdict === NfVerdict.DROP)).toEqual([]);
  });

  test('abort drops everything, late packets included; release afterwards is refused', async () => {
    const { kernel, hold } = await start();
    kernel.packet(1);
    const aborting = hold.abort();
    kernel.packet(2); // arrives while the rules are being removed
    const result = await aborting;
    expect(result).toMatchObject({ outcome: 'aborted', late: 1 });
    expect(kernel.verdicts.every((v) => v.verdict === NfVerdict.DROP)).toBe(true); // and no pass-through
    expect(kernel.passThrough).toBe(false);
    expect(kernel.verdicts.map((v) => v.maxId)).toContain(2);
    await expect(hold.release()).rejects.toMatchObject({ code: 'ERR_NETWORK_HOLD_ABORTED' });
  });

  test('when removing the rules fails, packets keep flowing through the queue and a second release finishes', async () => {
    const { kernel, hold } = await start();
    kernel.packet(1);
    kernel.failNextRemovals(1);
    await expect(hold.release()).rejects.toMatchObject({ code: 'ERR_NETWORK_HOLD_FAILED' });
    expect(hold.state).toBe('releasing');
    expect(kernel.passThrough).toBe(true); // new packets go through without this process
    expect(kernel.closed).toBe(false);
    // abort() of a half-done release finishes the release: packets were let through already.
    const result = await hold.abort();
    expect(result).toMatchObject({ outcome: 'released', late: 0 });
    expect(kernel.closed).toBe(true);
  });

  test('a kernel that refuses the pass-through: packets arriving during the release are accepted one by one', async () => {
    const { kernel, hold } = await start();
    kernel.refusePassThrough();
    kernel.packet(1);
    kernel.failNextRemovals(1);
    await expect(hold.release()).rejects.toMatchObject({ code: 'ERR_NETWORK_HOLD_FAILED' });
    kernel.packet(2);
    await new Promise((r) => setImmediate(r));
    expect(kernel.verdicts.at(-1)).toMatchObject({ maxId: 2, verdict: NfVerdict.ACCEPT, state: 'releasing' });
    expect(await hold.release()).toMatchObject({ outcome: 'released', late: 1, passThrough: false });
  });

  test('a failed install unbinds the queue and removes what it put there', async () => {
    const kernel = fakeKernel();
    const record = planPacketHold({ netnsPath: ns, variant: 'nf_tables', families: ['ipv4'] });
    const failing: ToolRunner = async (file, args, input) =>
      input?.includes(':FERRY-HOLD') ? { code: 1, stdout: '', stderr: 'iptables-restore: line 3 failed' } : kernel.run(file, args, input);
    await expect(PacketHold.start({ record, tools, run: failing, openQueue: kernel.open })).rejects.toMatchObject({
      code: 'ERR_NETWORK_HOLD_FAILED',
      message: expect.stringContaining('line 3 failed'),
    });
    expect(kernel.closed).toBe(true);
  });
});
