import { chooseStrategy, type StrategyInputs } from './choose-strategy';

const all = ['stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'] as const;
const noHash = ['stop-and-copy', 'pre-copy', 'post-copy'] as const;
const both = (memTrack: boolean, lazyPages: boolean) => ({ source: { memTrack, lazyPages }, destination: { memTrack, lazyPages } });

test('auto prefers pre-copy, then post-copy, then stop-and-copy, and says why', () => {
  expect(chooseStrategy({ requested: 'auto', ...both(true, true), implemented: all }).strategy).toBe('pre-copy');
  const post = chooseStrategy({ requested: 'auto', ...both(false, true), implemented: noHash });
  expect(post.strategy).toBe('post-copy');
  expect(post.reason).toMatch(/pre-copy needs CRIU memory tracking .* on the source \(missing\)/);
  const inputs: StrategyInputs = { requested: 'auto', source: { memTrack: false, lazyPages: false }, destination: { memTrack: true, lazyPages: true }, implemented: noHash };
  const stop = chooseStrategy(inputs);
  expect(stop.strategy).toBe('stop-and-copy');
  expect(stop.reason).toMatch(/pre-copy needs .* on the source \(missing\)/);
  expect(stop.reason).toMatch(/post-copy needs .* \(missing on source\)/);
});

test('pre-copy needs memory tracking on the source only: the destination just restores chained images', () => {
  const inputs: StrategyInputs = { requested: 'auto', source: { memTrack: true, lazyPages: false }, destination: { memTrack: false, lazyPages: false }, implemented: all };
  expect(chooseStrategy(inputs)).toMatchObject({ strategy: 'pre-copy', reason: expect.stringMatching(/source tracks memory/) });
  expect(chooseStrategy({ ...inputs, requested: 'pre-copy' }).strategy).toBe('pre-copy');
  expect(() => chooseStrategy({ ...inputs, source: inputs.destination, destination: inputs.source, requested: 'pre-copy' })).toThrow(
    expect.objectContaining({ code: 'ERR_PRECHECK_FEATURE_MISSING' }),
  );
});

test('auto skips what this build does not implement', () => {
  const choice = chooseStrategy({ requested: 'auto', ...both(true, true), implemented: ['stop-and-copy'] });
  expect(choice.strategy).toBe('stop-and-copy');
  expect(choice.reason).toMatch(/pre-copy is not implemented/);
});

test('an explicit strategy that cannot run is a precheck error with a hint', () => {
  expect(() => chooseStrategy({ requested: 'pre-copy', ...both(false, true), implemented: all })).toThrow(
    expect.objectContaining({ code: 'ERR_PRECHECK_FEATURE_MISSING', hint: expect.stringContaining('ferry doctor') }),
  );
  expect(chooseStrategy({ requested: 'stop-and-copy', ...both(false, false), implemented: all })).toEqual({ strategy: 'stop-and-copy', reason: 'requested with --strategy' });
});

test('auto picks hash-based pre-copy where the kernel tracks no memory', () => {
  const choice = chooseStrategy({ requested: 'auto', ...both(false, true), implemented: all });
  expect(choice.strategy).toBe('hash-pre-copy');
  expect(choice.reason).toMatch(/no kernel tracking needed.*pre-copy needs CRIU memory tracking \(soft-dirty\) on the source \(missing\)/);
  expect(chooseStrategy({ requested: 'hash-pre-copy', source: { memTrack: false, lazyPages: true }, destination: { memTrack: false, lazyPages: false }, implemented: all }).strategy).toBe('hash-pre-copy');
});

test('hash-based pre-copy needs a lazy dump on the source only', () => {
  const noLazySource = { requested: 'auto' as const, source: { memTrack: false, lazyPages: false }, destination: { memTrack: false, lazyPages: true }, implemented: all };
  const choice = chooseStrategy(noLazySource);
  expect(choice.strategy).toBe('stop-and-copy');
  expect(choice.reason).toMatch(/hash-pre-copy needs a lazy dump on the source/);
  expect(chooseStrategy({ ...noLazySource, source: { memTrack: false, lazyPages: true }, destination: { memTrack: false, lazyPages: false } }).strategy).toBe('hash-pre-copy');
});
