import { downtimeCandidates } from './assess-move';
import { planMigration } from './plan-migration';
import { host, inputs } from './plan-fixtures.test-helpers';

const methods = (i: ReturnType<typeof inputs>) => downtimeCandidates(i, planMigration(i)).map((p) => `${p.strategy}${p.lazyRestore ? ' lazily' : ''}`);

describe('downtimeCandidates: what --max-downtime may fall back to, in order', () => {
  it('on this project hosts: auto restores lazily already, then post-copy and stop-and-copy', () => {
    expect(methods(inputs())).toEqual(['hash-pre-copy lazily', 'post-copy', 'stop-and-copy']);
  });

  it('--no-lazy-restore: hash-pre-copy, then post-copy and stop-and-copy, never its lazy restore', () => {
    expect(methods(inputs({ request: { lazyRestore: false } }))).toEqual(['hash-pre-copy', 'post-copy', 'stop-and-copy']);
  });

  it('with CRIU pre-copy first, the lazy restore still follows hash-pre-copy', () => {
    expect(methods(inputs({ source: host('a', { memTrack: true }) }))).toEqual(['pre-copy', 'hash-pre-copy', 'hash-pre-copy lazily', 'post-copy', 'stop-and-copy']);
  });

  it('no lazy restore where the destination cannot restore lazily', () => {
    expect(methods(inputs({ destination: host('b', { lazyPages: false }) }))).toEqual(['hash-pre-copy', 'stop-and-copy']);
    expect(methods(inputs({ destination: host('b', { pipe: 4096 }) }))).not.toContain('hash-pre-copy lazily');
  });

  it('--lazy-restore asked: the later strategies stay candidates (they restore as they do)', () => {
    expect(methods(inputs({ request: { lazyRestore: true } }))).toEqual(['hash-pre-copy lazily', 'post-copy', 'stop-and-copy']);
  });

  it('an explicit strategy or a clone is never replaced', () => {
    expect(methods(inputs({ request: { strategy: 'hash-pre-copy' } }))).toEqual(['hash-pre-copy']);
    expect(methods(inputs({ request: { clone: { name: 'copy' } } }))).toHaveLength(1);
  });
});
