import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide, decidePages, readDecision, readPagesOutcome } from './decision';

let state: string;
beforeEach(() => (state = mkdtempSync(join(tmpdir(), 'ferry-decision-'))));
afterEach(() => rmSync(state, { recursive: true, force: true }));

test('the first word stands: an abort after a commit reads committed, and the reverse', () => {
  expect(readDecision(state, 'm1')).toBeUndefined();
  expect(decide(state, 'm1', 'committed')).toBe('committed');
  expect(decide(state, 'm1', 'aborted')).toBe('committed');
  expect(decide(state, 'm2', 'aborted')).toBe('aborted');
  expect(decide(state, 'm2', 'committed')).toBe('aborted');
  expect(readDecision(state, 'm2')).toBe('aborted');
});

test('post-copy pages: complete or lost, once', () => {
  expect(readPagesOutcome(state, 'm1')).toBeUndefined();
  expect(decidePages(state, 'm1', 'lost')).toBe('lost');
  expect(decidePages(state, 'm1', 'complete')).toBe('lost');
});
