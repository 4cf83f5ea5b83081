import type { RevertResult, SnapshotListing, SnapshotRecord, StartedContainer } from '@ferry/core';
import {
  renderRevert,
  renderSnapshotList,
  renderSnapshotRemoved,
  renderSnapshotTaken,
  renderStart,
  revertJson,
  snapshotListJson,
  startJson,
} from './render-snapshot';

const record: SnapshotRecord = {
  format: 'ferry-snapshot/1',
  id: '001-20261112T101530Z',
  seq: 1,
  container: 'web',
  runtime: 'runc',
  takenAt: '2026-11-12T10:15:30.123Z',
  kind: 'full',
  reason: 'no memory tracking on this kernel',
  instance: '4242@2026-11-12T10:00:00Z',
  imageBytes: 67_302_878,
  frozenMs: 192.699,
  dumpMs: 256,
  pagesWritten: 16415,
  pagesSkippedParent: 0,
  tcpEstablished: false,
};
const running = { ref: { runtime: 'runc' as const, id: 'web' }, state: 'running' as const, pid: 4300 };

test('snapshot taken: full with the reason, frozen, dump, sizes, where, how to go back', () => {
  expect(renderSnapshotTaken({ record, dir: '/s/web/001-20261112T101530Z', container: running })).toBe(
    [
      'snapshot 001-20261112T101530Z of runc:web taken (full: no memory tracking on this kernel)',
      '  frozen        193 ms',
      '  dump time     256 ms, 16415 pages written',
      '  image size    64.2 MiB',
      '  stored in     /s/web/001-20261112T101530Z',
      '  the container keeps running; go back to this state with `ferry snapshot revert web 001-20261112T101530Z`',
      '',
    ].join('\n'),
  );
  const incremental = { ...record, id: '002-20261112T101630Z', kind: 'incremental' as const, parent: record.id, pagesSkippedParent: 16000, pagesWritten: 415 };
  const text = renderSnapshotTaken({ record: incremental, dir: '/d', container: { ...running, state: 'paused' } });
  expect(text).toContain('taken (incremental on 001-20261112T101530Z)');
  expect(text).toContain('415 pages written, 16000 pages kept in the parent');
  expect(text).toContain('the container stays paused');
});

test('snapshot ls: a table with disk per snapshot, the total, incomplete ones, the reason once', () => {
  const listing: SnapshotListing = {
    container: 'web',
    dir: '/s/web',
    totalDiskBytes: 134_782_976 + 4096,
    snapshots: [
      { id: record.id, seq: 1, dir: '/s/web/001', complete: true, record, diskBytes: 67_391_488 },
      { id: '003-20261112T101730Z', seq: 3, dir: '/s/web/003', complete: true, record: { ...record, id: '003-20261112T101730Z', frozenMs: 1234.5, takenAt: '2026-11-12T10:17:30.000Z' }, diskBytes: 67_391_488 },
      { id: '004-20261112T101830Z', seq: 4, dir: '/s/web/004', complete: false, diskBytes: 4096 },
    ],
  };
  expect(renderSnapshotList(listing)).toBe(
    [
      'SNAPSHOT              TAKEN (UTC)          KIND         FROZEN     IMAGE      DISK',
      '001-20261112T101530Z  2026-11-12 10:15:30  full         193 ms  64.2 MiB  64.3 MiB',
      '003-20261112T101730Z  2026-11-12 10:17:30  full        1235 ms  64.2 MiB  64.3 MiB',
      '004-20261112T101830Z  -                    incomplete        -         -   4.0 KiB',
      'total 128.5 MiB on disk in 2 snapshots and 1 incomplete (/s/web)',
      'all full: no memory tracking on this kernel',
      '',
    ].join('\n'),
  );
  expect(renderSnapshotList({ container: 'web', dir: '/s/web', snapshots: [], totalDiskBytes: 0 })).toBe(
    'web has no snapshots (/s/web); take one with `ferry snapshot web`\n',
  );
  const parsed = JSON.parse(snapshotListJson(listing));
  expect(parsed).toMatchObject({ event: 'snapshots', container: 'web', totalDiskBytes: 134_787_072 });
  expect(parsed.snapshots[0]).toMatchObject({ id: record.id, complete: true, diskBytes: 67_391_488, kind: 'full', frozenMs: 192.699 });
  expect(parsed.snapshots[2]).toEqual({ id: '004-20261112T101830Z', seq: 4, dir: '/s/web/004', complete: false, diskBytes: 4096 });
});

const started = (id: string, mode: StartedContainer['netns']['mode'], path: string): StartedContainer => ({
  container: { ref: { runtime: 'runc', id }, state: 'running', pid: 77, netns: { path, addresses: [] } },
  imagesDir: '/img',
  restoreMs: 212,
  netns: { mode, recordedPath: '/run/netns/ferry-ct-web', holders: mode === 'own' ? ['web-1'] : [], reason: mode === 'own' ? '/run/netns/ferry-ct-web is in use by web-1' : 'free' },
  criu: { restoreMs: 150.2, forkingMs: 0.1, pagesCompared: 0, pagesSkippedCow: 0, pagesRestored: 100 },
});

test('start: one line per container with its netns, the image (read only), the total for several', () => {
  const text = renderStart({
    imagesDir: '/img',
    imageBytes: 64 * 1024 * 1024,
    totalMs: 480,
    started: [started('web-1', 'join', '/run/netns/ferry-ct-web'), started('web-2', 'own', '/run/netns/ferry-ct-web-2')],
  });
  expect(text).toBe(
    [
      'started runc:web-1 (pid 77) in 212 ms (CRIU 150 ms), netns /run/netns/ferry-ct-web (the recorded one)',
      'started runc:web-2 (pid 77) in 212 ms (CRIU 150 ms), netns /run/netns/ferry-ct-web-2 (its own: /run/netns/ferry-ct-web is in use by web-1)',
      '  from          /img (64.0 MiB, read only: it can start any number of copies)',
      '  all 2 in    480 ms',
      '',
    ].join('\n'),
  );
  const json = JSON.parse(startJson({ imagesDir: '/img', imageBytes: 1, totalMs: 2, started: [started('a', 'join', '/n')] }));
  expect(json).toMatchObject({ event: 'start', imagesDir: '/img', containers: [{ container: { ref: { id: 'a' } }, restoreMs: 212, netns: { mode: 'join' } }] });
});

test('revert: what was stopped, restore time, downtime, the snapshot kept; JSON has the same facts', () => {
  const result: RevertResult = { snapshot: record, dir: '/s/web/001', started: started('web', 'join', '/run/netns/ferry-ct-web'), stopped: true, stopMs: 174, downtimeMs: 532 };
  expect(renderRevert(result)).toBe(
    [
      'reverted runc:web to snapshot 001-20261112T101530Z (taken 2026-11-12 10:15:30 UTC)',
      '  stopped       the running container in 174 ms',
      '  restore time  212 ms (CRIU 150 ms)',
      '  downtime      532 ms (stop + restore)',
      '  now running   pid 77; the snapshot is kept in /s/web/001',
      '',
    ].join('\n'),
  );
  expect(renderRevert({ ...result, stopped: false })).toContain('stopped       nothing (the container was not there)');
  expect(JSON.parse(revertJson(result))).toMatchObject({ event: 'revert', snapshot: { id: record.id }, stopped: true, stopMs: 174, restoreMs: 212, downtimeMs: 532 });
  expect(renderSnapshotRemoved('web', { id: record.id, seq: 1, dir: '/d', complete: true, diskBytes: 2 * 1024 * 1024 })).toBe(
    'removed snapshot 001-20261112T101530Z of web (2.0 MiB freed)\n',
  );
});
