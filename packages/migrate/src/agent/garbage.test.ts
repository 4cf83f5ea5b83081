import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError, type ContainerInfo, type RuntimeAdapter } from '@ferry/core';
import { collectGarbage, removeArrivedMigration } from './garbage';

let state: string;
/** Only what gc asks a runtime: inspect (and remove, for an interrupted move that restored nothing). */
class Containers {
  readonly running = new Map<string, ContainerInfo>();
  add(id: string): ContainerInfo {
    const info: ContainerInfo = { ref: { runtime: 'runc', id }, state: 'running' };
    this.running.set(id, info);
    return info;
  }
  adapter(): RuntimeAdapter {
    return {
      inspect: async (id: string) => {
        const c = this.running.get(id);
        if (!c) throw new FerryError('ERR_RUNTIME_NOT_FOUND', `no ${id}`);
        return c;
      },
      remove: async () => undefined,
    } as unknown as RuntimeAdapter;
  }
}
let runtime: Containers;
const HOUR = 3_600_000;
const NOW = Date.parse('2026-12-01T12:00:00Z');

beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'ferry-gc-'));
  runtime = new Containers();
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

function dir(path: string, ageMs: number, record?: object): string {
  const full = join(state, path);
  mkdirSync(join(full, 'bundle'), { recursive: true });
  if (record) writeFileSync(join(full, 'migration.json'), JSON.stringify(record));
  const t = (NOW - ageMs) / 1000;
  utimesSync(full, t, t);
  return full;
}

const gc = (dryRun = false) => collectGarbage({ stateDir: state, runtime: () => runtime.adapter(), log: () => undefined, now: () => NOW }, { olderThanMs: 24 * HOUR, dryRun });

test('leftovers go by the retention rule; what a running container uses stays', async () => {
  const here = runtime.add('stays');
  const kept = dir('migrations/aaaaaaaa-1', 100 * HOUR, { runtime: 'runc', name: 'stays', committed: true });
  (here as { bundle?: string }).bundle = join(kept, 'bundle');
  dir('migrations/bbbbbbbb-2', 1 * HOUR, { runtime: 'runc', name: 'left', committed: true }); // young, but its container left
  dir('migrations/cccccccc-3', 1 * HOUR, { runtime: 'runc', name: 'moving', committed: false }); // a move in progress
  dir('migrations/dddddddd-4', 48 * HOUR, { runtime: 'runc', name: 'crashed', committed: false }); // an interrupted one
  dir('failover-old', 48 * HOUR);
  dir('failover-new', 1 * HOUR);
  dir('outgoing/eeeeeeee-5', 48 * HOUR);

  const planned = await gc(true);
  expect(planned.every((i) => !i.removed)).toBe(true);
  expect(readdirSync(join(state, 'migrations'))).toHaveLength(4); // a dry run removes nothing

  const removed = await gc();
  expect(removed.map((i) => i.path.slice(state.length + 1)).sort()).toEqual(['failover-old', 'migrations/bbbbbbbb-2', 'migrations/dddddddd-4', 'outgoing/eeeeeeee-5']);
  expect(readdirSync(join(state, 'migrations')).sort()).toEqual(['aaaaaaaa-1', 'cccccccc-3']);
  expect(readdirSync(state).filter((n) => n.startsWith('failover-'))).toEqual(['failover-new']);
});

test('removeArrivedMigration: only a bundle that arrived in migrations/ID', () => {
  const arrived = dir('migrations/ffffffff-6', 0);
  expect(removeArrivedMigration(state, join(arrived, 'bundle'))).toBe(arrived);
  expect(readdirSync(join(state, 'migrations'))).toEqual([]);
  expect(removeArrivedMigration(state, '/srv/bundles/web')).toBeUndefined();
  expect(removeArrivedMigration(state, join(state, 'migrations', '..', 'etc', 'bundle'))).toBeUndefined();
  expect(removeArrivedMigration(state, undefined)).toBeUndefined();
});
