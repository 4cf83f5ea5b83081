import type { MigrationEvent } from '@ferry/core';
import { createEventRenderer, progressText } from './render-events';

const MiB = 1024 * 1024;

function render(events: MigrationEvent[], tty: boolean, times: number[]): string {
  let out = '';
  let i = 0;
  const r = createEventRenderer({ json: false, tty, write: (s) => (out += s), clock: () => times[Math.min(i, times.length - 1)]! });
  for (const e of events) {
    r(e);
    i++;
  }
  return out;
}

const moves: MigrationEvent[] = [
  { type: 'plan', strategy: 'stop-and-copy', reason: 'small', container: 'web', destination: 'h2' },
  { type: 'phase-start', phase: 'transfer-images' },
  { type: 'progress', phase: 'transfer-images', bytes: 256 * MiB, totalBytes: 1024 * MiB },
  { type: 'progress', phase: 'transfer-images', bytes: 512 * MiB, totalBytes: 1024 * MiB },
  { type: 'phase-end', phase: 'transfer-images', ms: 2000, bytes: 1024 * MiB },
  { type: 'committed', downtimeMs: 2100 },
];

it('on a TTY rewrites the phase line with bytes, rate and ETA, then closes it with the phase total', () => {
  const out = render(moves, true, [0, 0, 1000, 2000, 2000, 2000]);
  expect(out).toBe(
    'ferry: migrating web to h2 with stop-and-copy (small)\n' +
      '  transfer-images ...' +
      '\r  transfer-images 256.0 MiB of 1.00 GiB, 256.0 MiB/s, ETA 3.0 s\u001b[K' +
      '\r  transfer-images 512.0 MiB of 1.00 GiB, 256.0 MiB/s, ETA 2.0 s\u001b[K' +
      '\r  transfer-images: 2000 ms, 1.00 GiB\u001b[K\n' +
      '  committed: the destination runs the container (downtime 2100 ms)\n',
  );
});

it('without a TTY prints plain lines, progress at most every 2 s', () => {
  const out = render(moves, false, [0, 0, 1000, 1500, 2000, 2000]);
  expect(out).toBe(
    'ferry: migrating web to h2 with stop-and-copy (small)\n' +
      '  transfer-images: 256.0 MiB of 1.00 GiB, 256.0 MiB/s, ETA 3.0 s\n' +
      '  transfer-images: 2000 ms, 1.00 GiB\n' +
      '  committed: the destination runs the container (downtime 2100 ms)\n',
  );
});

it('pre-copy rounds close an open phase line and show as they come', () => {
  const out = render(
    [
      { type: 'phase-start', phase: 'precopy' },
      { type: 'precopy-round', round: 1, pages: 100, bytes: 409600, scannedPages: 100, ms: 50, cpuMs: 20, next: 'round', reason: 'first round' },
      { type: 'phase-end', phase: 'precopy', ms: 60 },
    ],
    true,
    [0],
  );
  expect(out).toBe('  precopy ...\n    round 1: 100 pages changed (400.0 KiB) of 100, 50 ms, source cpu 20 ms -> round: first round\n  precopy: 60 ms\n');
});

it('--json writes one object per event with its type as "event"', () => {
  let out = '';
  const r = createEventRenderer({ json: true, tty: true, write: (s) => (out += s) });
  r({ type: 'progress', phase: 'copy-bundle', bytes: 5 });
  expect(JSON.parse(out)).toEqual({ event: 'progress', phase: 'copy-bundle', bytes: 5 });
});

it('progressText without a total or before any time passed', () => {
  expect(progressText({ bytes: 3 * MiB }, 0)).toBe('3.0 MiB');
  expect(progressText({ bytes: 3 * MiB }, 1000)).toBe('3.0 MiB, 3.0 MiB/s');
});

function rendered(events: MigrationEvent[], verb?: string): string {
  let out = '';
  const r = createEventRenderer({ json: false, tty: false, write: (s) => (out += s), ...(verb ? { verb } : {}) });
  for (const e of events) r(e);
  return out;
}

test('"rolled back: the source container runs again" only when the source had been frozen (#14)', () => {
  expect(rendered([{ type: 'rolled-back', reason: 'unknown host', sourceFrozen: false }])).toContain('stopped before anything was frozen: the source container ran throughout');
  expect(rendered([{ type: 'rolled-back', reason: 'unknown host', sourceFrozen: false }])).not.toContain('runs again');
  expect(rendered([{ type: 'rolled-back', reason: 'restore failed', sourceFrozen: true }])).toContain('rolled back: the source container runs again');
});

test('a clone plan says cloning', () => {
  expect(rendered([{ type: 'plan', strategy: 'stop-and-copy', reason: 'a clone is a stop-and-copy: the original runs on', container: 'web', destination: 'h2' }], 'cloning')).toBe(
    'ferry: cloning web to h2 with stop-and-copy (a clone is a stop-and-copy: the original runs on)\n',
  );
});
