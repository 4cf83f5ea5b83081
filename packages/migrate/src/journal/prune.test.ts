import { existsSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, migrationDir } from './journal';
import { FINISHED_MOVE_KEEP_MS, pruneFinishedMoves } from './prune';

let state: string;
beforeEach(() => (state = mkdtempSync(join(tmpdir(), 'ferry-prune-'))));
afterEach(() => rmSync(state, { recursive: true, force: true }));

function move(id: string, role: 'source' | 'destination', done: boolean, ageMs: number): void {
  const j = Journal.create(migrationDir(state, id), { t: 'begin', role, id, runtime: 'runc', container: 'web', peer: 'h2' });
  if (done) j.append({ t: 'done', outcome: 'moved' });
  j.close();
  const at = (Date.now() - ageMs) / 1000;
  utimesSync(join(migrationDir(state, id), 'journal'), at, at);
}

test('finished source moves go after a week; open ones and destination directories stay', () => {
  move('old-done', 'source', true, FINISHED_MOVE_KEEP_MS + 1000);
  move('new-done', 'source', true, 1000);
  move('old-open', 'source', false, FINISHED_MOVE_KEEP_MS + 1000);
  move('old-dest', 'destination', true, FINISHED_MOVE_KEEP_MS + 1000);
  expect(pruneFinishedMoves(state)).toEqual(['old-done']);
  for (const id of ['new-done', 'old-open', 'old-dest']) expect(existsSync(migrationDir(state, id))).toBe(true);
});
