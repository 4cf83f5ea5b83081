import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PacketHold, PacketHoldRecord, PacketHoldResult } from '../network';
import { Reverter } from './adapter-common';
import { OwnedStore, type OwnedResources } from './runc-restore';
import { RuncTrafficHolds, type StartHold } from './runc-traffic-hold';

const record = { kind: 'nfqueue-hold', id: 'h1', netnsPath: '/run/netns/x' } as unknown as PacketHoldRecord;
const result = { held: { inbound: 3, outbound: 2, forwarded: 0, bytes: 300 }, late: 0, verdictMs: 7, decisionMs: 9, first: [] } as unknown as PacketHoldResult;

let dir: string;
let store: OwnedStore;
let calls: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-holds-'));
  store = new OwnedStore(dir, { ipPath: '/nonexistent/ip', nsenterPath: '/nonexistent/nsenter' });
  calls = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const fakeHold = (): PacketHold =>
  ({
    record,
    release: async () => (calls.push('release'), result),
    abort: async () => (calls.push('abort'), result),
  }) as unknown as PacketHold;

/** A start that journals the record (as holdNetnsTraffic does) and checks it is on disk before the hold exists. */
const starting: StartHold = async (_path, onRecord) => {
  onRecord(record);
  calls.push(`start (owned.json has the record: ${store.read('c1')?.heldTraffic?.id === 'h1'})`);
  return fakeHold();
};
const raise = async () => void calls.push('raise');

test('the hold is recorded and started before the bridge ends come up; the release delivers and clears owned.json', async () => {
  const holds = new RuncTrafficHolds(store, '/usr/sbin', starting);
  const owned: OwnedResources = { netns: 'ferry-ct-c1', heldUplink: ['fv1'] };
  store.write('c1', owned);
  expect(await holds.holdThenRaise('c1', '/run/netns/ferry-ct-c1', owned, raise, new Reverter())).toBe(true);
  expect(calls).toEqual(['start (owned.json has the record: true)', 'raise']);
  expect(store.read('c1')).toEqual({ netns: 'ferry-ct-c1', heldTraffic: record });

  expect(await holds.release('c1', store.read('c1'))).toEqual({ heldInbound: 3, heldOutbound: 2, verdictMs: 7 });
  expect(store.read('c1')).toEqual({ netns: 'ferry-ct-c1' });
  expect(await holds.release('c1', store.read('c1'))).toBeUndefined(); // idempotent
  expect(calls.filter((c) => c === 'release')).toHaveLength(1);
});

test('a hold that cannot start changes nothing: the bridge ends stay down and the release says why', async () => {
  const failing: StartHold = async (_p, onRecord) => {
    onRecord(record);
    throw new Error('no NFQUEUE target');
  };
  const holds = new RuncTrafficHolds(store, '/usr/sbin', failing);
  const owned: OwnedResources = { netns: 'ferry-ct-c1', heldUplink: ['fv1'] };
  expect(await holds.holdThenRaise('c1', '/run/netns/ferry-ct-c1', owned, raise, new Reverter())).toBe(false);
  expect(calls).toEqual([]);
  expect(store.read('c1')).toEqual({ netns: 'ferry-ct-c1', heldUplink: ['fv1'] });
  expect(await holds.release('c1', store.read('c1'))).toMatchObject({ notHeld: 'no NFQUEUE target' });
});

test('a failed restore aborts the hold (its packets are dropped, never delivered)', async () => {
  const holds = new RuncTrafficHolds(store, '/usr/sbin', starting);
  const revert = new Reverter();
  const owned: OwnedResources = { netns: 'ferry-ct-c1', heldUplink: ['fv1'] };
  await holds.holdThenRaise('c1', '/run/netns/ferry-ct-c1', owned, raise, revert);
  await revert.fail();
  expect(calls).toContain('abort');
  expect(calls).not.toContain('release');
});

test("another process's hold (its holder died) is lifted from owned.json's record", async () => {
  const holds = new RuncTrafficHolds(store, '/usr/sbin', starting);
  // The record names a namespace that does not exist: lifting it has nothing to remove.
  const orphan = { ...record, netnsPath: join(dir, 'no-such-netns'), netns: { dev: 1, ino: 1 } } as PacketHoldRecord;
  store.write('c1', { heldTraffic: orphan });
  expect(await holds.release('c1', store.read('c1'))).toEqual({ heldInbound: 0, heldOutbound: 0, lifted: 'gone' });
  expect(store.read('c1')).toEqual({});
});

test('a namespace made before the freeze is held with its bridge ends down; the restore raises them behind the hold', async () => {
  const holds = new RuncTrafficHolds(store, '/usr/sbin', starting);
  const owned: OwnedResources = { netns: 'ferry-ct-c1', heldUplink: ['fv1'] };
  store.write('c1', owned);
  expect(await holds.hold('c1', '/run/netns/ferry-ct-c1', owned)).toBe(true);
  expect(calls).toEqual(['start (owned.json has the record: true)']); // nothing raised: the source still answers
  expect(store.read('c1')).toEqual({ netns: 'ferry-ct-c1', heldUplink: ['fv1'], heldTraffic: record });
  expect(holds.holding('c1')).toBe(true);
  await holds.raiseHeld('c1', owned, raise);
  expect(calls).toEqual(['start (owned.json has the record: true)', 'raise']);
  expect(store.read('c1')).toEqual({ netns: 'ferry-ct-c1', heldTraffic: record });
  await holds.abort('c1');
  expect(holds.holding('c1')).toBe(false);
  await expect(holds.raiseHeld('c1', owned, raise)).rejects.toThrow(/no packet hold for c1/);
});
