import type { MigrationEvent } from '@ferry/core';
import { PROGRESS_EVERY_BYTES, PROGRESS_EVERY_MS, transferProgress } from './progress-events';

it('reports every 64 MiB or every 250 ms, whichever comes first, and the last count on flush', () => {
  const events: MigrationEvent[] = [];
  let now = 1000;
  const p = transferProgress('transfer-images', (e) => events.push(e), 200 * 1024 * 1024, () => now);
  const MiB = 1024 * 1024;
  p.onProgress(1 * MiB); // too soon, too little: held
  p.onProgress(10 * MiB);
  expect(events).toEqual([]);
  p.onProgress(PROGRESS_EVERY_BYTES + 1); // 64 MiB since the last report
  now += 10;
  p.onProgress(PROGRESS_EVERY_BYTES + 2 * MiB); // held
  now += PROGRESS_EVERY_MS;
  p.onProgress(PROGRESS_EVERY_BYTES + 3 * MiB); // 250 ms since the last report
  p.onProgress(PROGRESS_EVERY_BYTES + 4 * MiB); // held
  p.flush();
  p.flush(); // nothing new: no second event
  expect(events).toEqual([
    { type: 'progress', phase: 'transfer-images', bytes: PROGRESS_EVERY_BYTES + 1, totalBytes: 200 * MiB },
    { type: 'progress', phase: 'transfer-images', bytes: PROGRESS_EVERY_BYTES + 3 * MiB, totalBytes: 200 * MiB },
    { type: 'progress', phase: 'transfer-images', bytes: PROGRESS_EVERY_BYTES + 4 * MiB, totalBytes: 200 * MiB },
  ]);
});

it('leaves the total out when it is unknown', () => {
  const events: MigrationEvent[] = [];
  let now = 0;
  const p = transferProgress('copy-bundle', (e) => events.push(e), undefined, () => now);
  now = 300;
  p.onProgress(5);
  expect(events).toEqual([{ type: 'progress', phase: 'copy-bundle', bytes: 5 }]);
});
