import { createEventRenderer } from './render-events';

function rendered(events: Parameters<ReturnType<typeof createEventRenderer>>[0][], verb?: string): string {
  let out = '';
  const render = createEventRenderer({ json: false, tty: false, write: (s) => (out += s), ...(verb ? { verb } : {}) });
  for (const e of events) render(e);
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
