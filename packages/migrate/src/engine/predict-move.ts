/**
 * What a move will cost, predicted from measurements taken before anything is frozen (dry-run.ts, assess-move.ts):
 * the link's rate, the container's memory and how fast it dirties it, the bytes of its files. Pure. Pre-copy's rounds
 * are simulated with the same convergence policy the real move applies, so the prediction ends its rounds where the
 * move would.
 */
import { DEFAULT_CONVERGENCE_POLICY, nextPrecopyStep, type ConvergencePolicy, type PrecopyRound } from '../precopy/convergence-policy';
import type { StrategyName } from './plan-migration';

export interface MoveMeasurements {
  /** Bytes per second the short probe transfer reached (after a --bandwidth cap). */
  linkBytesPerSec: number;
  /** What a full copy of memory sends: the non-zero pages of the first pass. */
  memoryBytes: number;
  /** Bytes the second pass found changed, over the time between the passes' starts. */
  dirtyBytesPerSec: number;
  /** The bundle and other trees a move copies (0 with --shared-storage). */
  filesBytes: number;
}

/**
 * CRIU's own part of a freeze, which does not depend on the link: dumping process state and restoring it on the
 * destination. An assumption, not a measurement (a dry run must not dump): the prediction error of real moves shows
 * how far off it is.
 */
export const FREEZE_FIXED_MS = 400;
/** The same for the moments outside the freeze: connect, negotiate, commit and clean up. */
export const MOVE_FIXED_MS = 600;
/**
 * How fast an eager restore brings memory back on the destination, frozen: CRIU reads every page from the images
 * and writes it into the new tasks. Measured on this project's 2-core VM: 256 MiB in 860 ms and 1 GiB in 4.0 s
 * (pages/local-restore.int.test.ts). A lazy restore (post-copy, hash-pre-copy with --lazy-restore) writes almost no
 * page while frozen: its memory follows the restore.
 */
export const EAGER_RESTORE_BYTES_PER_SEC = 300 * (1 << 20);

export interface MovePrediction {
  strategy: StrategyName;
  /** hash-pre-copy restored lazily from the pages the destination holds (the plan's lazyRestore). */
  lazyRestore?: true;
  bytes: number;
  freezeMs: number;
  totalMs: number;
  /** Pre-copy: the rounds the policy would run, and the bytes left for the frozen step. */
  rounds?: number;
  frozenBytes?: number;
  /** How each number follows from the measurements, in words an operator can check. */
  basis: string[];
}

const MiB = 1 << 20;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const rate = (b: number) => `${(b / MiB).toFixed(1)} MiB/s`;
const sendMs = (bytes: number, perSec: number) => (bytes * 1000) / perSec;

export function predictMove(
  strategy: StrategyName,
  m: MoveMeasurements,
  policy: ConvergencePolicy = DEFAULT_CONVERGENCE_POLICY,
  options: { lazyRestore?: boolean } = {},
): MovePrediction {
  if (!(m.linkBytesPerSec > 0)) throw new RangeError(`linkBytesPerSec must be > 0, got ${m.linkBytesPerSec}`);
  const filesMs = sendMs(m.filesBytes, m.linkBytesPerSec);
  const memoryMs = sendMs(m.memoryBytes, m.linkBytesPerSec);
  const restoreMs = sendMs(m.memoryBytes, EAGER_RESTORE_BYTES_PER_SEC);
  const restore = `restore of ${mib(m.memoryBytes)} at ${rate(EAGER_RESTORE_BYTES_PER_SEC)} (assumed) = ${Math.round(restoreMs)} ms`;
  const basis = [
    `link ${rate(m.linkBytesPerSec)} (probe transfer), memory ${mib(m.memoryBytes)} (non-zero pages), dirtied at ${rate(m.dirtyBytesPerSec)} (two passes), files ${mib(m.filesBytes)}`,
  ];
  const fixed = `${FREEZE_FIXED_MS} ms assumed for CRIU's dump and restore of the rest`;
  if (strategy === 'post-copy') {
    basis.push(`freeze ≈ ${fixed}: memory follows after the restore`, `total ≈ files ${Math.round(filesMs)} ms + freeze + memory ${Math.round(memoryMs)} ms + ${MOVE_FIXED_MS} ms fixed`);
    return { strategy, bytes: m.filesBytes + m.memoryBytes, freezeMs: FREEZE_FIXED_MS, totalMs: filesMs + FREEZE_FIXED_MS + memoryMs + MOVE_FIXED_MS, basis };
  }
  if (strategy === 'stop-and-copy') {
    const freezeMs = memoryMs + restoreMs + FREEZE_FIXED_MS;
    basis.push(`freeze ≈ memory ${mib(m.memoryBytes)} ÷ link = ${Math.round(memoryMs)} ms + ${restore} + ${fixed}`, `total ≈ files ${Math.round(filesMs)} ms + freeze + ${MOVE_FIXED_MS} ms fixed`);
    return { strategy, bytes: m.filesBytes + m.memoryBytes, freezeMs, totalMs: filesMs + freezeMs + MOVE_FIXED_MS, basis };
  }
  const lazy = strategy === 'hash-pre-copy' && options.lazyRestore === true;
  const { rounds, frozenBytes } = simulateRounds(m, policy);
  const roundBytes = rounds.reduce((a, r) => a + r.bytes, 0);
  const roundsMs = rounds.reduce((a, r) => a + r.durationMs, 0);
  const frozenMs = sendMs(frozenBytes, m.linkBytesPerSec);
  const freezeMs = frozenMs + (lazy ? 0 : restoreMs) + FREEZE_FIXED_MS;
  // The lazy restore's fill runs after the freeze from the destination's own pages, at the eager restore's rate.
  const fillMs = lazy ? restoreMs : 0;
  basis.push(
    `${rounds.length} round(s) while running: ${rounds.map((r) => mib(r.bytes)).join(', ')} (each ≈ dirty rate × the previous round's time), ${Math.round(roundsMs)} ms`,
    lazy
      ? `freeze ≈ ${mib(frozenBytes)} left ÷ link = ${Math.round(frozenMs)} ms + ${fixed}: restored lazily, memory fills in after it (≈ ${Math.round(fillMs)} ms)`
      : `freeze ≈ ${mib(frozenBytes)} left ÷ link = ${Math.round(frozenMs)} ms + ${restore} + ${fixed}`,
    `total ≈ files ${Math.round(filesMs)} ms + rounds + freeze${lazy ? ' + fill' : ''} + ${MOVE_FIXED_MS} ms fixed`,
  );
  return {
    strategy,
    ...(lazy ? { lazyRestore: true as const } : {}),
    bytes: m.filesBytes + roundBytes + frozenBytes,
    freezeMs,
    totalMs: filesMs + roundsMs + freezeMs + fillMs + MOVE_FIXED_MS,
    rounds: rounds.length,
    frozenBytes,
    basis,
  };
}

/** A prediction's method in words: the strategy, and how it restores when that is not the strategy's default. */
export function methodOf(p: Pick<MovePrediction, 'strategy' | 'lazyRestore'>): string {
  return p.lazyRestore ? `${p.strategy} with a lazy restore` : p.strategy;
}

/** Pre-copy's rounds as the policy would run them on a steady workload: round k+1 is what is dirtied during round k. */
export function simulateRounds(m: MoveMeasurements, policy: ConvergencePolicy): { rounds: PrecopyRound[]; frozenBytes: number } {
  const rounds: PrecopyRound[] = [];
  let bytes = m.memoryBytes;
  let at = 0;
  for (;;) {
    const durationMs = sendMs(bytes, m.linkBytesPerSec);
    rounds.push({ pages: Math.ceil(bytes / 4096), bytes, startedAtMs: at, durationMs });
    at += durationMs;
    const dirtied = Math.min(m.memoryBytes, (m.dirtyBytesPerSec * durationMs) / 1000);
    if (nextPrecopyStep(rounds, policy).action === 'freeze') return { rounds, frozenBytes: dirtied };
    bytes = dirtied;
  }
}

/**
 * --max-downtime: keep the strategy when its predicted freeze fits, else fall back to the candidate (in order of
 * preference) whose prediction fits, else refuse with the numbers. `candidates` are the strategies both hosts allow
 * (a strategy the operator named with --strategy is the only candidate).
 */
export type DowntimeDecision =
  | { action: 'keep'; prediction: MovePrediction }
  | { action: 'fall-back'; prediction: MovePrediction; reason: string }
  | { action: 'refuse'; reason: string };

export function decideDowntime(predictions: readonly MovePrediction[], maxDowntimeMs: number): DowntimeDecision {
  const [first] = predictions;
  if (!first) throw new RangeError('no strategy to judge');
  if (first.freezeMs <= maxDowntimeMs) return { action: 'keep', prediction: first };
  const why = `${methodOf(first)} would freeze the container about ${Math.round(first.freezeMs)} ms, over --max-downtime ${maxDowntimeMs} ms`;
  const fits = predictions.slice(1).find((p) => p.freezeMs <= maxDowntimeMs);
  if (fits) return { action: 'fall-back', prediction: fits, reason: `${why}; ${methodOf(fits)} fits (about ${Math.round(fits.freezeMs)} ms)` };
  const others = predictions.slice(1).map((p) => `${methodOf(p)} about ${Math.round(p.freezeMs)} ms`);
  return { action: 'refuse', reason: others.length ? `${why} (${others.join(', ')})` : why };
}

/** --max-downtime as the convergence policy's frozen target: what the link may send frozen besides CRIU's own part. */
export function policyFor(maxDowntimeMs: number | undefined, base: ConvergencePolicy = DEFAULT_CONVERGENCE_POLICY): ConvergencePolicy {
  if (maxDowntimeMs === undefined) return base;
  const targetFrozenSendMs = Math.max(0, Math.min(base.targetFrozenSendMs, maxDowntimeMs - FREEZE_FIXED_MS));
  return { ...base, targetFrozenSendMs, targetFrozenBytes: targetFrozenSendMs === 0 ? 0 : base.targetFrozenBytes };
}

export interface PredictionError {
  predicted: { bytes: number; freezeMs: number; totalMs: number };
  actual: { bytes: number; freezeMs: number; totalMs: number };
  /** (actual − predicted) ÷ predicted, in percent, rounded to one decimal. */
  errorPct: { bytes: number; freezeMs: number; totalMs: number };
}

export function predictionError(p: Pick<MovePrediction, 'bytes' | 'freezeMs' | 'totalMs'>, actual: { bytes: number; freezeMs: number; totalMs: number }): PredictionError {
  const pct = (a: number, b: number) => (b === 0 ? (a === 0 ? 0 : 100) : Math.round(((a - b) / b) * 1000) / 10);
  const predicted = { bytes: Math.round(p.bytes), freezeMs: Math.round(p.freezeMs), totalMs: Math.round(p.totalMs) };
  return {
    predicted,
    actual,
    errorPct: { bytes: pct(actual.bytes, predicted.bytes), freezeMs: pct(actual.freezeMs, predicted.freezeMs), totalMs: pct(actual.totalMs, predicted.totalMs) },
  };
}
