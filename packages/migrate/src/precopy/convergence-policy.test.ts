import { DEFAULT_CONVERGENCE_POLICY, dirtyRate, measuredThroughput, nextPrecopyStep, type PrecopyRound } from './convergence-policy';

const MiB = 1 << 20;
// Rounds back to back on a 100 MiB/s link: each starts when the previous one ended.
function rounds(...mib: number[]): PrecopyRound[] {
  let t = 0;
  return mib.map((m) => {
    const r = { pages: (m * MiB) / 4096, bytes: m * MiB, startedAtMs: t, durationMs: Math.max(1, m * 10) };
    t += r.durationMs;
    return r;
  });
}

describe('nextPrecopyStep', () => {
  it('starts with a full round', () => {
    expect(nextPrecopyStep([])).toEqual({ action: 'round', reason: expect.stringMatching(/first round/) });
  });

  it('always takes a second round after the first full copy, however small', () => {
    expect(nextPrecopyStep(rounds(2)).action).toBe('round');
  });

  it('freezes once the last round fits the frozen target', () => {
    const step = nextPrecopyStep(rounds(1024, 170, 2));
    expect(step).toMatchObject({ action: 'freeze', outcome: 'converged' });
    expect(step.reason).toMatch(/round 3 changed 512 pages \(2\.0 MiB\)/);
  });

  it('converges by send time on a fast link even above the byte floor', () => {
    // 20 MiB at 100 MiB/s is 200 ms, under the 300 ms target.
    expect(nextPrecopyStep(rounds(1024, 20))).toMatchObject({ action: 'freeze', outcome: 'converged' });
  });

  it('keeps going while rounds shrink', () => {
    expect(nextPrecopyStep(rounds(1024, 300, 120))).toEqual({ action: 'round', reason: 'round 3 changed 120.0 MiB' });
  });

  it('gives up when memory is dirtied faster than the link moves it', () => {
    // Round 2 found 1200 MiB changed during round 1's 10.24 s: ~117 MiB/s against a 100 MiB/s link.
    const r = rounds(1024, 1200);
    expect(dirtyRate(r)! / MiB).toBeGreaterThan(100);
    const step = nextPrecopyStep(r);
    expect(step).toMatchObject({ action: 'freeze', outcome: 'dirty-rate-exceeds-link' });
    expect(step.reason).toMatch(/dirtied at 117\.2 MiB\/s, faster than the transfer moves it \(100\.0 MiB\/s\)/);
  });

  it('gives up when the whole memory changes every round (the measurable dirty rate saturates at the link)', () => {
    const step = nextPrecopyStep(rounds(64, 64));
    expect(step).toMatchObject({ action: 'freeze', outcome: 'dirty-rate-exceeds-link' });
    expect(step.reason).toMatch(/dirtied at 100\.0 MiB\/s, (faster than|nearly as fast as) the transfer/);
  });

  it('stops when a round no longer shrinks by the ratio', () => {
    // Round 3 found 180 MiB changed over the 4 s since round 2 began (45 MiB/s, well under the 100 MiB/s link), yet
    // it is 0.9 of round 2: the workload rewrites more than the rounds gain.
    const r: PrecopyRound[] = [
      { pages: 0, bytes: 1024 * MiB, startedAtMs: 0, durationMs: 10_240 },
      { pages: 0, bytes: 200 * MiB, startedAtMs: 10_240, durationMs: 2000 },
      { pages: 0, bytes: 180 * MiB, startedAtMs: 14_240, durationMs: 1800 },
    ];
    expect(nextPrecopyStep(r)).toMatchObject({ action: 'freeze', outcome: 'not-shrinking' });
  });

  it('stops at the round limit', () => {
    const step = nextPrecopyStep(rounds(1024, 400, 300, 200), { ...DEFAULT_CONVERGENCE_POLICY, maxRounds: 4, shrinkRatio: 1 });
    expect(step).toMatchObject({ action: 'freeze', outcome: 'round-limit' });
  });

  it('rejects a nonsensical policy', () => {
    expect(() => nextPrecopyStep([], { ...DEFAULT_CONVERGENCE_POLICY, maxRounds: 0 })).toThrow(RangeError);
    expect(() => nextPrecopyStep([], { ...DEFAULT_CONVERGENCE_POLICY, shrinkRatio: 0 })).toThrow(RangeError);
  });
});

describe('measuredThroughput', () => {
  it('uses the largest round, not the fixed-cost-dominated small ones', () => {
    const r: PrecopyRound[] = [
      { pages: 0, bytes: 100 * MiB, startedAtMs: 0, durationMs: 1000 },
      { pages: 0, bytes: 1 * MiB, startedAtMs: 1000, durationMs: 200 },
    ];
    expect(measuredThroughput(r)! / MiB).toBeCloseTo(100);
  });
  it('is unknown without data', () => {
    expect(measuredThroughput([])).toBeUndefined();
    expect(measuredThroughput([{ pages: 0, bytes: 0, startedAtMs: 0, durationMs: 5 }])).toBeUndefined();
  });
});
