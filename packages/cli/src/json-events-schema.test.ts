/**
 * docs/json-events.schema.json against what the renderer writes for every event type, and against lines it must
 * refuse. Real CLI output is checked against it in e2e/migrate.test.ts (every strategy, and the error lines).
 */
import type { MigrationEvent } from '@ferry/core';
import { FerryError } from '@ferry/core';
import { createEventRenderer } from './render-events';
import { renderError } from './render-error';
import { jsonEventProblems } from './testing/json-events';

const every: MigrationEvent[] = [
  { type: 'plan', strategy: 'hash-pre-copy', reason: 'r', container: 'web', destination: 'h2' },
  { type: 'phase-start', phase: 'connect' },
  { type: 'phase-end', phase: 'copy-bundle', ms: 12, bytes: 4096, files: 3 },
  { type: 'progress', phase: 'transfer-images', bytes: 67108864, totalBytes: 268435456 },
  { type: 'progress', phase: 'copy-bundle', bytes: 5 },
  { type: 'precopy-round', round: 1, pages: 10, bytes: 40960, scannedPages: 10, ms: 5, cpuMs: 3, next: 'freeze', reason: 'converged' },
  { type: 'warning', message: 'w' },
  { type: 'committed', downtimeMs: 300 },
  { type: 'rolled-back', reason: 'restore failed' },
  { type: 'rolled-back', reason: 'interrupted', sourceFrozen: true },
  { type: 'guardian', id: '9f0c8a52-0d9e-4f3c-8a57-0a1b2c3d4e5f', pid: 4242 },
];

function rendered(events: MigrationEvent[]): unknown[] {
  let out = '';
  const render = createEventRenderer({ json: true, tty: false, write: (s) => (out += s) });
  for (const e of events) render(e);
  return out.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

it('accepts every event type as the renderer writes it, an error line and a report', () => {
  const error = JSON.parse(renderError(new FerryError('ERR_RUNTIME_NOT_FOUND', 'no such container', { hint: 'ferry ps' }), { json: true })) as unknown;
  const bug = JSON.parse(renderError(new Error('boom'), { json: true })) as unknown;
  const report = {
    event: 'report',
    report: {
      migrationId: 'm', container: 'web', runtime: 'runc', destination: 'h2', destinationName: 'web', strategy: 'stop-and-copy', strategyReason: 'r',
      downtimeMs: 1, totalMs: 2, bytesSent: 3, bytesSentFrozen: 3, phasesMs: { freeze: 1 }, rounds: 0, warnings: [],
    },
  };
  expect(jsonEventProblems([...rendered(every), error, bug, report])).toEqual([]);
});

it.each([
  ['an unknown event', { event: 'hello' }],
  ['an unknown phase', { event: 'phase-start', phase: 'teleport' }],
  ['a field the schema does not know', { event: 'committed', downtimeMs: 1, extra: true }],
  ['negative bytes', { event: 'progress', phase: 'copy-bundle', bytes: -1 }],
  ['a report without its numbers', { event: 'report', report: { container: 'web' } }],
])('refuses %s', (_what, line) => {
  expect(jsonEventProblems([line])).toHaveLength(1);
});
