import { DEFAULT_CONVERGENCE_POLICY } from '../precopy/convergence-policy';
import { EAGER_RESTORE_BYTES_PER_SEC, FREEZE_FIXED_MS, MOVE_FIXED_MS, decideDowntime, policyFor, predictMove, predictionError, simulateRounds, type MoveMeasurements } from './predict-move';

const MiB = 1 << 20;
const m = (over: Partial<MoveMeasurements> = {}): MoveMeasurements => ({ linkBytesPerSec: 100 * MiB, memoryBytes: 200 * MiB, dirtyBytesPerSec: 10 * MiB, filesBytes: 10 * MiB, ...over });
/** An eager restore of the 200 MiB: CRIU writes every page while the container is frozen. */
const RESTORE_MS = (200 * MiB * 1000) / EAGER_RESTORE_BYTES_PER_SEC;

describe('predictMove', () => {
  it('stop-and-copy freezes for the whole memory at the link rate, its eager restore, plus CRIU', () => {
    const p = predictMove('stop-and-copy', m());
    expect(p.freezeMs).toBeCloseTo(2000 + RESTORE_MS + FREEZE_FIXED_MS);
    expect(p.bytes).toBe(210 * MiB);
    expect(p.totalMs).toBeCloseTo(100 + 2000 + RESTORE_MS + FREEZE_FIXED_MS + MOVE_FIXED_MS);
    expect(p.basis.join('\n')).toMatch(/100\.0 MiB\/s.*200\.0 MiB/s);
    expect(p.basis.join('\n')).toMatch(/restore of 200\.0 MiB at 300\.0 MiB\/s \(assumed\) = 667 ms/);
  });

  it('post-copy freezes only for CRIU: memory follows the restore', () => {
    const p = predictMove('post-copy', m());
    expect(p.freezeMs).toBe(FREEZE_FIXED_MS);
    expect(p.totalMs).toBeCloseTo(100 + FREEZE_FIXED_MS + 2000 + MOVE_FIXED_MS);
  });

  it('pre-copy rounds shrink by dirty rate ÷ link until the policy freezes', () => {
    // 200 MiB in 2 s dirties 20 MiB; 20 MiB in 0.2 s dirties 2 MiB: under the 4 MiB floor, so the policy freezes.
    const { rounds, frozenBytes } = simulateRounds(m(), DEFAULT_CONVERGENCE_POLICY);
    expect(rounds.map((r) => r.bytes / MiB)).toEqual([200, 20]);
    expect(frozenBytes / MiB).toBeCloseTo(2);
    const p = predictMove('hash-pre-copy', m());
    expect(p.rounds).toBe(2);
    expect(p.freezeMs).toBeCloseTo(20 + RESTORE_MS + FREEZE_FIXED_MS);
    expect(p.bytes / MiB).toBeCloseTo(10 + 220 + 2);
  });

  it('hash-pre-copy restored lazily freezes for the last pages and CRIU only; the fill follows, in the total', () => {
    const eager = predictMove('hash-pre-copy', m());
    const lazy = predictMove('hash-pre-copy', m(), DEFAULT_CONVERGENCE_POLICY, { lazyRestore: true });
    expect(lazy.lazyRestore).toBe(true);
    expect(lazy.freezeMs).toBeCloseTo(20 + FREEZE_FIXED_MS);
    expect(lazy.totalMs).toBeCloseTo(eager.totalMs);
    expect(lazy.bytes).toBe(eager.bytes);
    expect(lazy.basis.join('\n')).toMatch(/restored lazily, memory fills in after it/);
    // Only hash-pre-copy restores lazily from what the destination holds.
    expect(predictMove('stop-and-copy', m(), DEFAULT_CONVERGENCE_POLICY, { lazyRestore: true }).lazyRestore).toBeUndefined();
  });

  it('a workload dirtying faster than the link stops after the policy sees it, and freezes with the lot', () => {
    const p = predictMove('pre-copy', m({ dirtyBytesPerSec: 150 * MiB }));
    expect(p.rounds).toBe(2);
    expect(p.frozenBytes).toBe(200 * MiB); // capped at the memory there is
    expect(p.freezeMs).toBeCloseTo(2000 + RESTORE_MS + FREEZE_FIXED_MS);
  });

  it('an idle workload leaves nothing for the freeze', () => {
    expect(predictMove('hash-pre-copy', m({ dirtyBytesPerSec: 0 })).frozenBytes).toBe(0);
  });

  it('refuses a link rate of zero', () => {
    expect(() => predictMove('stop-and-copy', m({ linkBytesPerSec: 0 }))).toThrow(RangeError);
  });
});

describe('decideDowntime', () => {
  const pre = predictMove('hash-pre-copy', m({ dirtyBytesPerSec: 150 * MiB }));
  const post = predictMove('post-copy', m());
  const stop = predictMove('stop-and-copy', m());

  it('keeps a strategy that fits', () => {
    expect(decideDowntime([pre, post], 5000)).toEqual({ action: 'keep', prediction: pre });
  });

  it('falls back to the first later strategy that fits, saying why', () => {
    const d = decideDowntime([pre, stop, post], 1000);
    expect(d).toMatchObject({ action: 'fall-back', prediction: post });
    expect(d.action === 'fall-back' && d.reason).toMatch(/hash-pre-copy would freeze .* about 3067 ms, over --max-downtime 1000 ms; post-copy fits/);
  });

  it('names a lazy restore when it is the one that fits', () => {
    const eager = predictMove('hash-pre-copy', m());
    const lazy = predictMove('hash-pre-copy', m(), DEFAULT_CONVERGENCE_POLICY, { lazyRestore: true });
    const d = decideDowntime([eager, lazy, post], 600);
    expect(d).toMatchObject({ action: 'fall-back', prediction: lazy });
    expect(d.action === 'fall-back' && d.reason).toMatch(/hash-pre-copy would freeze the container about 1087 ms, over --max-downtime 600 ms; hash-pre-copy with a lazy restore fits \(about 420 ms\)/);
  });

  it('refuses with every number when nothing fits', () => {
    const d = decideDowntime([pre, post], 1);
    expect(d.action).toBe('refuse');
    expect(d.action === 'refuse' && d.reason).toMatch(/about 3067 ms, over --max-downtime 1 ms \(post-copy about 400 ms\)/);
  });
});

describe('policyFor', () => {
  it('aims the frozen send at what --max-downtime leaves after CRIU', () => {
    expect(policyFor(600).targetFrozenSendMs).toBe(200);
    expect(policyFor(60_000).targetFrozenSendMs).toBe(DEFAULT_CONVERGENCE_POLICY.targetFrozenSendMs);
    expect(policyFor(100)).toMatchObject({ targetFrozenSendMs: 0, targetFrozenBytes: 0 });
    expect(policyFor(undefined)).toBe(DEFAULT_CONVERGENCE_POLICY);
  });
});

describe('predictionError', () => {
  it('is (actual - predicted) / predicted in percent', () => {
    const e = predictionError({ bytes: 1000, freezeMs: 400, totalMs: 2000 }, { bytes: 1100, freezeMs: 300, totalMs: 2000 });
    expect(e.errorPct).toEqual({ bytes: 10, freezeMs: -25, totalMs: 0 });
  });
  it('does not divide by zero', () => {
    expect(predictionError({ bytes: 0, freezeMs: 0, totalMs: 0 }, { bytes: 5, freezeMs: 0, totalMs: 1 }).errorPct).toEqual({ bytes: 100, freezeMs: 0, totalMs: 100 });
  });
});
