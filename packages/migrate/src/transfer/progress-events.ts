/**
 * Transfer progress as MigrationEvents: packDir's per-chunk byte count turned into `progress` events, at most one per
 * PROGRESS_EVERY_BYTES or PROGRESS_EVERY_MS (whichever comes first), so a 1 GiB copy reports a few dozen times instead
 * of thousands, and a slow link still shows movement four times a second. The last count is always reported.
 */
import type { EventSink, Phase } from '@ferry/core';
import type { DirSnapshot } from './transfer-types';

export const PROGRESS_EVERY_BYTES = 64 * 1024 * 1024;
export const PROGRESS_EVERY_MS = 250;

export interface ProgressReporter {
  /** packDir's onProgress: total bytes sent so far in this phase. */
  onProgress(bytes: number): void;
  /** Reports the final count if the last call was held back. */
  flush(): void;
}

export function transferProgress(
  phase: Phase,
  emit: EventSink,
  totalBytes?: number,
  clock: () => number = Date.now,
): ProgressReporter {
  let lastBytes = 0;
  let lastAt = clock();
  let pending: number | undefined;
  const send = (bytes: number) => {
    lastBytes = bytes;
    lastAt = clock();
    pending = undefined;
    emit({ type: 'progress', phase, bytes, ...(totalBytes !== undefined ? { totalBytes } : {}) });
  };
  return {
    onProgress(bytes) {
      if (bytes - lastBytes >= PROGRESS_EVERY_BYTES || clock() - lastAt >= PROGRESS_EVERY_MS) send(bytes);
      else pending = bytes;
    },
    flush() {
      if (pending !== undefined) send(pending);
    },
  };
}

/** Bytes of regular-file content in a snapshot: what packDir will send of it, the phase's total. */
export function fileBytes(snapshot: DirSnapshot): number {
  return snapshot.entries.reduce((sum, e) => (e.type === 'file' ? sum + e.size : sum), 0);
}
