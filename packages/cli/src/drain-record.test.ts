import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDrains, returnable, saveDrains, type DrainEntry } from './drain-record';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-drain-record-'));
  path = join(dir, 'drain.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (id: string, moves: DrainEntry['moves']): DrainEntry => ({ id, drainedAt: `2026-01-0${id}T00:00:00.000Z`, as: 'h1', moves });
const move = (container: string, status: DrainEntry['moves'][number]['status']) => ({ container, runtime: 'runc', destination: 'h2', status });

test('no file: an empty history', () => {
  expect(loadDrains(path)).toEqual({ format: 'ferry-drains/1', drains: [] });
});

test('a later drain that failed does not hide what an earlier one moved', () => {
  const history = loadDrains(path);
  history.drains.push(entry('1', [move('a', 'moved'), move('b', 'failed'), move('c', 'moved')]));
  saveDrains(path, history);
  const later = loadDrains(path);
  later.drains.push(entry('2', [move('b', 'failed')]));
  saveDrains(path, later);
  expect(returnable(loadDrains(path)).map((r) => r.move.container)).toEqual(['a', 'c']);
  expect((readFileSync(path, 'utf8').match(/"id"/g) ?? []).length).toBe(2);
});

test('a corrupt or malformed file is ERR_STATE_CORRUPT naming the file, not "no drain"', () => {
  writeFileSync(path, '{"drains": [');
  expect(() => loadDrains(path)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CORRUPT', message: expect.stringContaining(path) }));
  writeFileSync(path, '[1,2]');
  expect(() => loadDrains(path)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CORRUPT' }));
  writeFileSync(path, JSON.stringify({ format: 'ferry-drains/1', drains: [{ id: 'x', moves: 'no' }] }));
  expect(() => loadDrains(path)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CORRUPT' }));
});

test('the one-drain record of earlier versions is read as a history', () => {
  writeFileSync(path, JSON.stringify({ drainedAt: '2026-01-01T00:00:00Z', as: 'h1', moves: [{ container: 'a', runtime: 'runc', destination: 'h2', ok: true }, { container: 'b', runtime: 'runc', destination: 'h3', ok: false }] }));
  expect(returnable(loadDrains(path)).map((r) => [r.move.container, r.entry.as])).toEqual([['a', 'h1']]);
});

test('a drain.json that is a symlink is neither read nor written through', () => {
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'x');
  symlinkSync(victim, path);
  expect(() => loadDrains(path)).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(() => saveDrains(path, { format: 'ferry-drains/1', drains: [] })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(readFileSync(victim, 'utf8')).toBe('x');
});
