import { formatSnapshotId, nextSnapshotSeq, parseSnapshotId, resolveSnapshotRef, sortSnapshotIds } from './snapshot-names';

const at = (iso: string) => new Date(iso);

test('ids: three-digit sequence number, then the UTC time to the second', () => {
  expect(formatSnapshotId(1, at('2026-11-12T10:15:30.987Z'))).toBe('001-20261112T101530Z');
  expect(formatSnapshotId(42, at('2026-01-02T03:04:05Z'))).toBe('042-20260102T030405Z');
  expect(formatSnapshotId(1234, at('2026-01-02T03:04:05Z'))).toBe('1234-20260102T030405Z');
  expect(() => formatSnapshotId(0, new Date())).toThrow(RangeError);
  expect(() => formatSnapshotId(1.5, new Date())).toThrow(RangeError);
});

test('parse: round trip; anything else is not a snapshot', () => {
  expect(parseSnapshotId('007-20261112T101530Z')).toEqual({ id: '007-20261112T101530Z', seq: 7, takenAt: at('2026-11-12T10:15:30Z') });
  for (const name of ['head.json', '01-20261112T101530Z', '001-20261112T101530', '001-20261312T101530Z', '001-20261112T250000Z', 'x001-20261112T101530Z', '001-20261112T101530Z.tmp']) {
    expect(parseSnapshotId(name)).toBeUndefined();
  }
});

test('order: by sequence number, not by name (1000 after 999), other names dropped', () => {
  const names = ['1000-20261112T101530Z', 'head.json', '999-20261112T101529Z', '002-20261112T101000Z', '010-20261112T101100Z'];
  expect(sortSnapshotIds(names).map((s) => s.seq)).toEqual([2, 10, 999, 1000]);
});

test('next number: one past the highest, incomplete ones included; 1 when there are none', () => {
  expect(nextSnapshotSeq([])).toBe(1);
  expect(nextSnapshotSeq(['head.json'])).toBe(1);
  expect(nextSnapshotSeq(['001-20261112T101530Z', '005-20261112T101530Z', '003-20261112T101530Z'])).toBe(6);
});

test('refs: the whole id, the number with or without zeros, or latest', () => {
  const ids = ['001-20261112T101530Z', '002-20261112T101600Z', '010-20261112T101700Z'];
  expect(resolveSnapshotRef('002-20261112T101600Z', ids)).toBe('002-20261112T101600Z');
  expect(resolveSnapshotRef('2', ids)).toBe('002-20261112T101600Z');
  expect(resolveSnapshotRef('010', ids)).toBe('010-20261112T101700Z');
  expect(resolveSnapshotRef('latest', ids)).toBe('010-20261112T101700Z');
  expect(resolveSnapshotRef('3', ids)).toBeUndefined();
  expect(resolveSnapshotRef('002-20261112T101601Z', ids)).toBeUndefined();
  expect(resolveSnapshotRef('latest', [])).toBeUndefined();
  expect(resolveSnapshotRef('../etc', ids)).toBeUndefined();
});
