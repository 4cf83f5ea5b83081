import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, readJournal } from './journal';
import { lockHolder, takeMoveLock } from './move-lock';
import { selfId } from './proc-identity';

let state: string;
beforeEach(() => (state = mkdtempSync(join(tmpdir(), 'ferry-journal-'))));
afterEach(() => rmSync(state, { recursive: true, force: true }));

test('appends, folds holds and releases, and ignores a torn last line', () => {
  const dir = join(state, 'migrations', 'm1');
  const j = Journal.create(dir, { t: 'begin', role: 'source', id: 'm1', runtime: 'runc', container: 'web', peer: 'h2' });
  j.hold({ kind: 'dump', marker: '/x/images', port: 7 });
  j.hold({ kind: 'dump', pids: [{ pid: 10, startTime: 20 }] });
  j.hold({ kind: 'frozen' });
  j.release('frozen');
  j.append({ t: 'commit-intent' });
  j.close();
  appendFileSync(join(dir, 'journal'), '{"t":"commit'); // a crash in the middle of a write
  const s = readJournal(dir);
  expect(s.holds.get('dump')).toMatchObject({ marker: '/x/images', port: 7, pids: [{ pid: 10, startTime: 20 }] });
  expect(s.holds.has('frozen')).toBe(false);
  expect(s.commitIntent).toBe(true);
  expect(s.committed).toBe(false);
  expect(() => Journal.create(dir, { t: 'begin', role: 'source', id: 'm1', runtime: 'runc', container: 'web', peer: 'h2' })).toThrow(/has a journal already/);
});

test('one move per container: a second is refused while the first is open, and the lock of a finished move is stale', () => {
  const open = Journal.create(join(state, 'migrations', 'm1'), { t: 'begin', role: 'source', id: 'm1', runtime: 'runc', container: 'web', peer: 'h2' });
  open.hold({ kind: 'owner', pids: [selfId()] });
  const release = takeMoveLock(state, 'runc', 'web', 'm1');
  expect(lockHolder(state, 'runc', 'web')).toBe('m1');
  expect(() => takeMoveLock(state, 'runc', 'web', 'm2')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_MOVE_IN_PROGRESS', message: expect.stringMatching(/being moved already/) }));
  open.append({ t: 'done', outcome: 'moved' });
  open.close();
  takeMoveLock(state, 'runc', 'web', 'm2')();
  release(); // not the holder any more: leaves m2's (already released) lock alone
  expect(lockHolder(state, 'runc', 'web')).toBeUndefined();
});

test('an interrupted move (owner dead, journal open) refuses a new one with a hint to recover', () => {
  const j = Journal.create(join(state, 'migrations', 'm1'), { t: 'begin', role: 'source', id: 'm1', runtime: 'runc', container: 'web', peer: 'h2' });
  j.hold({ kind: 'owner', pids: [{ pid: 999_999, startTime: 1 }] });
  j.close();
  takeMoveLock(state, 'runc', 'web', 'm1');
  expect(() => takeMoveLock(state, 'runc', 'web', 'm2')).toThrow(expect.objectContaining({ hint: expect.stringMatching(/ferry recover m1/) }));
});
