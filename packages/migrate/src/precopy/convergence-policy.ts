/**
 * When pre-copy stops copying while the container runs and freezes it for the final step. Shared by every pre-copy
 * flavour (ferry's hash-based rounds, CRIU's soft-dirty pre-dumps): a round is "what changed since the last one, and
 * what it cost to send". Pure, so every rule is unit-tested.
 *
 * Rules, in order (the first that applies decides):
 * 1. No round yet: copy everything once.
 * 2. The last round was small enough to send while frozen within the downtime target: freeze (converged).
 * 3. Memory is dirtied at `shrinkRatio` or more of the link's speed: each round would be at least that fraction of
 *    the one before (round k+1 ≈ dirty rate × round k's duration), so rounds cannot converge. Give up and freeze.
 * 4. The last round did not shrink the previous one by `shrinkRatio`: rounds have stopped paying for themselves.
 * 5. The round limit: freeze whatever is left.
 */

export interface PrecopyRound {
  /** Pages found changed since the previous round (all present pages in the first). */
  pages: number;
  /** Payload bytes sent for them (after dropping zero pages, before transport framing). */
  bytes: number;
  /** When the round started reading memory (ms, any monotonic clock). */
  startedAtMs: number;
  /** Wall time from the round's first read to the destination's acknowledgement. */
  durationMs: number;
}

export interface ConvergencePolicy {
  /** Rounds at most (including the first full copy). */
  maxRounds: number;
  /** Freeze once the last round's bytes could be sent in this long at the measured throughput. */
  targetFrozenSendMs: number;
  /** Freeze anyway once the last round moved at most this many bytes (a floor for very slow links). */
  targetFrozenBytes: number;
  /** A round must be at most this fraction of the previous one to count as progress. */
  shrinkRatio: number;
}

export const DEFAULT_CONVERGENCE_POLICY: ConvergencePolicy = Object.freeze({
  maxRounds: 8,
  targetFrozenSendMs: 300,
  targetFrozenBytes: 4 << 20,
  shrinkRatio: 0.8,
});

export type PrecopyOutcome = 'converged' | 'not-shrinking' | 'dirty-rate-exceeds-link' | 'round-limit';

export type PrecopyStep =
  | { action: 'round'; reason: string }
  | { action: 'freeze'; outcome: PrecopyOutcome; reason: string };

const MiB = 1 << 20;
const fmtMiB = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const fmtRate = (bytesPerSec: number) => `${(bytesPerSec / MiB).toFixed(1)} MiB/s`;

/**
 * Bytes per second the transfer achieved: the biggest round's bytes over its duration (small rounds are dominated by
 * fixed costs and would understate the link).
 */
export function measuredThroughput(rounds: readonly PrecopyRound[]): number | undefined {
  let best: PrecopyRound | undefined;
  for (const r of rounds) if (r.durationMs > 0 && (best === undefined || r.bytes > best.bytes)) best = r;
  return best === undefined || best.bytes === 0 ? undefined : (best.bytes * 1000) / best.durationMs;
}

/**
 * How fast the workload dirties memory, from the last round: what it found changed over the time since the previous
 * round started reading (the window in which those pages could change).
 */
export function dirtyRate(rounds: readonly PrecopyRound[]): number | undefined {
  if (rounds.length < 2) return undefined;
  const last = rounds[rounds.length - 1]!;
  const prev = rounds[rounds.length - 2]!;
  const window = last.startedAtMs - prev.startedAtMs;
  return window > 0 ? (last.bytes * 1000) / window : undefined;
}

export function nextPrecopyStep(rounds: readonly PrecopyRound[], policy: ConvergencePolicy = DEFAULT_CONVERGENCE_POLICY): PrecopyStep {
  checkPolicy(policy);
  if (rounds.length === 0) return { action: 'round', reason: 'first round copies every present page' };
  const last = rounds[rounds.length - 1]!;
  const throughput = measuredThroughput(rounds);
  const n = rounds.length;

  if (n >= 2 || last.bytes === 0) {
    const sendMs = throughput === undefined ? 0 : (last.bytes * 1000) / throughput;
    if (last.bytes <= policy.targetFrozenBytes || sendMs <= policy.targetFrozenSendMs) {
      return {
        action: 'freeze',
        outcome: 'converged',
        reason: `round ${n} changed ${last.pages} pages (${fmtMiB(last.bytes)}), about ${Math.round(sendMs)} ms to send frozen`,
      };
    }
  }
  const rate = dirtyRate(rounds);
  if (rate !== undefined && throughput !== undefined && rate >= throughput * policy.shrinkRatio) {
    return {
      action: 'freeze',
      outcome: 'dirty-rate-exceeds-link',
      reason: `memory is dirtied at ${fmtRate(rate)}, ${rate >= throughput ? 'faster than' : 'nearly as fast as'} the transfer moves it (${fmtRate(throughput)}): more rounds cannot catch up`,
    };
  }
  if (n >= 3) {
    const prev = rounds[n - 2]!;
    if (last.bytes > prev.bytes * policy.shrinkRatio) {
      return {
        action: 'freeze',
        outcome: 'not-shrinking',
        reason: `round ${n} (${fmtMiB(last.bytes)}) is not below ${policy.shrinkRatio} of round ${n - 1} (${fmtMiB(prev.bytes)}): rounds stopped paying off`,
      };
    }
  }
  if (n >= policy.maxRounds) {
    return { action: 'freeze', outcome: 'round-limit', reason: `reached the limit of ${policy.maxRounds} rounds with ${fmtMiB(last.bytes)} still changing per round` };
  }
  return { action: 'round', reason: n === 1 ? 'copy what changed during the first round' : `round ${n} changed ${fmtMiB(last.bytes)}` };
}

function checkPolicy(p: ConvergencePolicy): void {
  if (!Number.isInteger(p.maxRounds) || p.maxRounds < 1) throw new RangeError(`maxRounds must be an integer >= 1, got ${p.maxRounds}`);
  if (!(p.shrinkRatio > 0 && p.shrinkRatio <= 1)) throw new RangeError(`shrinkRatio must be in (0, 1], got ${p.shrinkRatio}`);
  if (!(p.targetFrozenSendMs >= 0) || !(p.targetFrozenBytes >= 0)) throw new RangeError('frozen targets must be >= 0');
}
