import type { ContainerInfo } from '@ferry/core';
import { checkpointJson, createProgress, formatMs, renderCheckpoint, renderRestore, restoreJson, type RestoreSummary } from './render-checkpoint';

const container: ContainerInfo = { ref: { runtime: 'runc', id: 'web' }, state: 'running', pid: 4242 };

test('formatMs: one decimal below 10 ms, whole numbers above, ? when unknown', () => {
  expect(formatMs(5.155)).toBe('5.2 ms');
  expect(formatMs(0.003)).toBe('0.0 ms');
  expect(formatMs(125.36)).toBe('125 ms');
  expect(formatMs(undefined)).toBe('? ms');
});

test('checkpoint report: frozen, dump time with CRIU memory phases, image size, what became of the container', () => {
  const stats = { frozenMs: 69.155, memdumpMs: 11.274, memwriteMs: 10.226, pagesWritten: 4116, imageBytes: 16_916_692, totalMs: 127 };
  const stopped = { container: { ...container, state: 'stopped' as const }, imagesDir: '/ck/web', leaveRunning: false, stats };
  expect(renderCheckpoint(stopped)).toBe(
    [
      'checkpointed runc:web into /ck/web',
      '  frozen        69 ms',
      '  dump time     127 ms (memory dump 11 ms, memory write 10 ms, 4116 pages written)',
      '  image size    16.1 MiB',
      '  the container was stopped; bring it back with `ferry restore /ck/web`',
      '',
    ].join('\n'),
  );
  expect(renderCheckpoint({ ...stopped, leaveRunning: true, stats: { imageBytes: 10, totalMs: 3 } })).toContain(
    '  frozen        ? ms\n  dump time     3.0 ms\n  image size    10 B\n  the container keeps running\n',
  );
  expect(JSON.parse(checkpointJson(stopped))).toEqual({
    event: 'checkpoint',
    container: { runtime: 'runc', id: 'web' },
    state: 'stopped',
    imagesDir: '/ck/web',
    leaveRunning: false,
    stats,
  });
});

test('restore report: restore time with CRIU inside, image size, the checkpoint it came from', () => {
  const summary: RestoreSummary = {
    container,
    imagesDir: '/ck/web',
    restoreMs: 214,
    imageBytes: 16_952_963,
    criu: { restoreMs: 107.13, forkingMs: 0.003, pagesRestored: 4115, pagesCompared: 0, pagesSkippedCow: 0 },
    checkpoint: { frozenMs: 126.691, memdumpMs: 18.371, memwriteMs: 16.819, pagesWritten: 4115 },
  };
  expect(renderRestore(summary)).toBe(
    [
      'restored runc:web (pid 4242) from /ck/web',
      '  restore time  214 ms (CRIU 107 ms, forking 0.0 ms, 4115 pages restored)',
      '  image size    16.2 MiB',
      '  checkpoint    frozen 127 ms (memory dump 18 ms, memory write 17 ms, 4115 pages)',
      '',
    ].join('\n'),
  );
  expect(renderRestore({ container, imagesDir: '/d', restoreMs: 9, imageBytes: 2048 })).toBe(
    'restored runc:web (pid 4242) from /d\n  restore time  9.0 ms\n  image size    2.0 KiB\n',
  );
  expect(JSON.parse(restoreJson(summary))).toEqual({
    event: 'restore',
    container,
    imagesDir: '/ck/web',
    restoreMs: 214,
    stats: { restoreMs: 214, imageBytes: 16_952_963, criuRestoreMs: 107.13, forkingMs: 0.003, pagesRestored: 4115 },
    checkpoint: summary.checkpoint,
  });
});

test('progress: a line on a TTY that ends with done or failed; nothing otherwise', () => {
  const out: string[] = [];
  const progress = createProgress({ enabled: true, write: (s) => out.push(s) });
  progress.start('checkpointing runc:web into /ck');
  progress.end(true);
  progress.end(false); // already closed: no second ending
  expect(out.join('')).toMatch(/^checkpointing runc:web into \/ck \.\.\. done \([\d.]+ ms\)\n$/);

  const failed: string[] = [];
  const p2 = createProgress({ enabled: true, write: (s) => failed.push(s) });
  p2.start('restoring');
  p2.end(false);
  expect(failed.join('')).toBe('restoring ... failed\n');

  const silent: string[] = [];
  const p3 = createProgress({ enabled: false, write: (s) => silent.push(s) });
  p3.start('x');
  p3.end(true);
  expect(silent).toEqual([]);
});
