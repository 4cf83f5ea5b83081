/**
 * Which strategy a migration uses, from what was asked and what both hosts (and this build of ferry) can do.
 * Pure: every combination is unit-tested.
 */
import { FerryError } from '@ferry/core';

/**
 * - pre-copy: CRIU pre-dumps with the kernel's memory tracking (soft-dirty), then a final dump of what changed.
 * - hash-pre-copy: ferry's own rounds (read, hash, send changed pages) where the kernel tracks nothing; the final
 *   full dump is sent as a difference against what the destination already holds.
 * - post-copy: CRIU lazy pages; the destination runs at once and pulls memory on demand.
 */
export type StrategyName = 'stop-and-copy' | 'pre-copy' | 'hash-pre-copy' | 'post-copy';
/** Auto's order of preference: shortest freeze without risking the single copy first. */
export const STRATEGY_PREFERENCE: readonly StrategyName[] = ['pre-copy', 'hash-pre-copy', 'post-copy'];
export type RequestedStrategy = StrategyName | 'auto';

export interface HostCapabilities {
  memTrack: boolean;
  lazyPages: boolean;
}

export interface StrategyInputs {
  requested: RequestedStrategy;
  source: HostCapabilities;
  destination: HostCapabilities;
  /** Strategies this version of ferry implements end to end. */
  implemented: readonly StrategyName[];
}

export interface StrategyChoice {
  strategy: StrategyName;
  reason: string;
}

const AUTO_REASONS: Record<StrategyName, string> = {
  'pre-copy': 'the source tracks memory: CRIU pre-dumps while it runs keep the final freeze short',
  'hash-pre-copy': 'memory is copied in rounds while the container runs (hashing pages, no kernel tracking needed), so the freeze sends only what changed',
  'post-copy': 'both hosts support lazy pages: the destination runs at once and pulls memory on demand',
  'stop-and-copy': 'the one strategy every host supports',
};

function blocker(name: StrategyName, inputs: StrategyInputs): string | undefined {
  if (!inputs.implemented.includes(name)) return `${name} is not implemented in this version of ferry`;
  const missing = (feature: keyof HostCapabilities, label: string) => {
    const where = [!inputs.source[feature] && 'source', !inputs.destination[feature] && 'destination'].filter(Boolean);
    return where.length ? `${name} needs ${label} on both hosts (missing on ${where.join(' and ')})` : undefined;
  };
  // Only the source pre-dumps; the destination restores from the chained images, which any CRIU reads.
  if (name === 'pre-copy') return inputs.source.memTrack ? undefined : `${name} needs CRIU memory tracking (soft-dirty) on the source (missing)`;
  if (name === 'post-copy') return missing('lazyPages', 'CRIU lazy pages (userfaultfd)');
  // Its frozen step is a lazy dump on the source (ferry reads the pages itself); the destination restores eagerly.
  if (name === 'hash-pre-copy' && !inputs.source.lazyPages) return 'hash-pre-copy needs a lazy dump on the source (CRIU lazy pages, and a runtime that can dump lazily)';
  return undefined;
}

export function chooseStrategy(inputs: StrategyInputs): StrategyChoice {
  if (inputs.requested !== 'auto') {
    const why = blocker(inputs.requested, inputs);
    if (why) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', why, {
        hint: 'Run `ferry doctor` on both hosts, or use --strategy auto to let ferry pick one that works.',
      });
    }
    return { strategy: inputs.requested, reason: 'requested with --strategy' };
  }
  const skipped: string[] = [];
  for (const name of STRATEGY_PREFERENCE) {
    const why = blocker(name, inputs);
    if (!why) return { strategy: name, reason: [AUTO_REASONS[name], ...skipped].join('; ') };
    skipped.push(why);
  }
  return { strategy: 'stop-and-copy', reason: [AUTO_REASONS['stop-and-copy'], ...skipped].join('; ') };
}
