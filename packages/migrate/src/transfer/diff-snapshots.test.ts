import { diffSnapshots, RACY_WINDOW_MS } from './diff-snapshots';
import type { DirSnapshot, SnapshotEntry } from './transfer-types';

const T0 = 1_700_000_000_000;

function entry(path: string, over: Partial<SnapshotEntry> = {}): SnapshotEntry {
  const type = over.type ?? (path.endsWith('/') ? 'dir' : 'file');
  return { path, type, mode: 0o644, uid: 0, gid: 0, size: 1, mtimeMs: T0, ctimeMs: T0, ...over };
}

function snap(entries: SnapshotEntry[], startedAtMs = T0 + 10_000): DirSnapshot {
  return { root: '/x', startedAtMs, entries, skipped: [] };
}

const base = [
  entry('.', { type: 'dir' }),
  entry('a', { type: 'dir' }),
  entry('a/one'),
  entry('a/two'),
  entry('gone', { type: 'dir' }),
  entry('gone/x'),
  entry('gone/y', { type: 'dir' }),
  entry('gone/y/z'),
  entry('link', { type: 'symlink', linkTarget: '/bin/busybox' }),
];

test('an unchanged tree has nothing to send', () => {
  expect(diffSnapshots(snap(base), snap(base))).toEqual({ changed: [], deleted: [] });
});

test('each kind of change is seen; deletions list only the top of a deleted subtree', () => {
  const after = [
    entry('.', { type: 'dir', mtimeMs: T0 + 1 }),
    entry('a', { type: 'dir' }),
    entry('a/one', { size: 2 }),
    entry('a/three'),
    entry('a/two', { mode: 0o600 }),
    entry('link', { type: 'symlink', linkTarget: 'busybox' }),
  ];
  expect(diffSnapshots(snap(base), snap(after))).toEqual({ changed: ['.', 'a/one', 'a/three', 'a/two', 'link'], deleted: ['gone'] });
});

test('owner, type, mtime and ctime changes count', () => {
  const one = (over: Partial<SnapshotEntry>) => diffSnapshots(snap([entry('f')]), snap([entry('f', over)])).changed;
  expect(one({ uid: 1 })).toEqual(['f']);
  expect(one({ gid: 1 })).toEqual(['f']);
  expect(one({ type: 'dir' })).toEqual(['f']);
  expect(one({ mtimeMs: T0 + 0.001 })).toEqual(['f']);
  // Content rewritten with the old mtime put back (cp -p, tar): only ctime tells.
  expect(one({ ctimeMs: T0 + 5 })).toEqual(['f']);
});

test('a directory that became a file: the file is sent, the old contents are deleted', () => {
  const before = [entry('d', { type: 'dir' }), entry('d/x'), entry('d/sub', { type: 'dir' }), entry('d/sub/y')];
  const after = [entry('d', { type: 'file', ctimeMs: T0 + 1 })];
  expect(diffSnapshots(snap(before), snap(after))).toEqual({ changed: ['d'], deleted: ['d/x', 'd/sub'] });
});

test('entries touched just before the first snapshot are sent again even when they look unchanged', () => {
  const started = T0 + 10_000;
  const racy = entry('hot', { mtimeMs: started - RACY_WINDOW_MS / 2, ctimeMs: started - RACY_WINDOW_MS / 2 });
  const calm = entry('cold', { mtimeMs: started - RACY_WINDOW_MS * 2, ctimeMs: started - RACY_WINDOW_MS * 2 });
  expect(diffSnapshots(snap([calm, racy], started), snap([calm, racy])).changed).toEqual(['hot']);
});
