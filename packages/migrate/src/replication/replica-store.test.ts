import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicaStore, type ReplicaMeta } from './replica-store';

let root: string;
beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'ferry-replicas-'))));
afterEach(() => rmSync(root, { recursive: true, force: true }));

const meta = (roundId: string): ReplicaMeta => ({ container: 'web', runtime: 'runc', roundId, sourceHost: 'h1', takenAt: '2026-11-27T00:00:00Z', frozenMs: 5, bytes: 10, kind: 'full' });

test('the previous copy stays current until the next round is complete, then goes', async () => {
  const store = new ReplicaStore(root);
  const first = store.beginRound('web', 'aaaa1111');
  writeFileSync(join(first, 'images', 'pages-1.img'), 'one');
  store.completeRound('web', 'aaaa1111', meta('aaaa1111'));
  expect(store.current('web')?.meta.roundId).toBe('aaaa1111');

  // A second round in progress does not touch the current copy; a failed one is simply removed by its owner.
  const second = store.beginRound('web', 'bbbb2222');
  writeFileSync(join(second, 'images', 'pages-1.img'), 'two');
  expect(store.current('web')?.meta.roundId).toBe('aaaa1111');
  store.completeRound('web', 'bbbb2222', meta('bbbb2222'));
  expect(store.current('web')?.meta.roundId).toBe('bbbb2222');
  expect(readlinkSync(join(root, 'web', 'current'))).toBe('000002-bbbb2222');
  expect(existsSync(join(root, 'web', '000001-aaaa1111'))).toBe(false);

  const listed = await store.list();
  expect(listed.map((r) => [r.meta.container, r.meta.roundId, r.diskBytes > 0])).toEqual([['web', 'bbbb2222', true]]);
});

test('names that could escape the store are refused', () => {
  const store = new ReplicaStore(root);
  expect(() => store.beginRound('../etc', 'x')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
  expect(store.current('nothing')).toBeUndefined();
});
