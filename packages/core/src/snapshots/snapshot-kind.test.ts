import { chooseSnapshotKind, containerInstance, dependentsOf, NO_MEMORY_TRACKING_REASON } from './snapshot-kind';

const instance = containerInstance(4242, '2026-11-12T10:00:00Z');
const head = { snapshot: '003-20261112T101530Z', instance };

test('no memory tracking (this kernel): always full, with the reason', () => {
  expect(chooseSnapshotKind({ memTrack: false, instance, head, headComplete: true })).toEqual({ kind: 'full', reason: NO_MEMORY_TRACKING_REASON });
  expect(NO_MEMORY_TRACKING_REASON).toBe('no memory tracking on this kernel');
});

test('feature check failed: full, and the reason says why', () => {
  expect(chooseSnapshotKind({ memTrack: undefined, memTrackError: 'criu not found', instance, head, headComplete: true })).toEqual({
    kind: 'full',
    reason: 'memory tracking unknown (criu not found)',
  });
});

test('memory tracking: incremental on the last snapshot of the same container instance', () => {
  expect(chooseSnapshotKind({ memTrack: true, instance, head, headComplete: true })).toEqual({
    kind: 'incremental',
    parent: '003-20261112T101530Z',
    reason: 'pages changed since 003-20261112T101530Z',
  });
});

test('memory tracking but no usable parent: full, for each reason', () => {
  expect(chooseSnapshotKind({ memTrack: true, instance, head: undefined, headComplete: false }).reason).toBe('first snapshot of this container');
  const restarted = containerInstance(5000, '2026-11-12T11:00:00Z');
  expect(chooseSnapshotKind({ memTrack: true, instance: restarted, head, headComplete: true })).toEqual({
    kind: 'full',
    reason: 'the container was restarted or reverted since the last snapshot',
  });
  expect(chooseSnapshotKind({ memTrack: true, instance, head, headComplete: false })).toEqual({
    kind: 'full',
    reason: 'the last snapshot (003-20261112T101530Z) was removed',
  });
});

test('instance key: pid and creation time; unknown parts are ?', () => {
  expect(containerInstance(1, 'T')).toBe('1@T');
  expect(containerInstance(undefined, undefined)).toBe('?@?');
});

test('dependents: everything that chains to a snapshot through parents', () => {
  const snaps = [{ id: 'a' }, { id: 'b', parent: 'a' }, { id: 'c', parent: 'b' }, { id: 'd' }, { id: 'e', parent: 'd' }];
  expect(dependentsOf('a', snaps)).toEqual(['b', 'c']);
  expect(dependentsOf('b', snaps)).toEqual(['c']);
  expect(dependentsOf('c', snaps)).toEqual([]);
  expect(dependentsOf('d', snaps)).toEqual(['e']);
});
