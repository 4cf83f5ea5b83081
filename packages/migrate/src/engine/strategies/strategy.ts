/**
 * A strategy is a few hooks into the one skeleton every move follows (execute-migration.ts), in the manner of
 * P.Haul's haulers: most are optional. Contract for every hook: when it throws before the point of no return, the
 * skeleton's undo steps (registered before each side effect, including the hook's own) bring the source back and
 * clean the destination.
 *
 * The page path of a strategy (where the destination gets the memory from) lives entirely in its module, so a new
 * page path changes only post-copy.ts and hash-pre-copy.ts.
 */
import type { RestoreParams } from '../../protocol/agent-messages';
import type { PrecopyReport } from '../migrate-deps';
import type { Reverter } from '../reverter';

export interface MoveStrategy {
  /**
   * Whether the skeleton pauses the container (the cgroup freezer) before dump(). Lazy dumps must not: runc refuses
   * to lazily dump a paused container, and CRIU freezes the tree itself.
   */
  readonly pauseBeforeDump: boolean;
  /** While the container still runs: pre-copy rounds, the destination's page server. */
  beforeFreeze?(): Promise<void>;
  /** The frozen step: leaves images for the transfer, or a lazy dump holding the frozen tasks. */
  dump(): Promise<void>;
  /** What the destination's restore needs beyond the images (post-copy: where the pages come from). */
  restoreParams?(): Promise<Partial<RestoreParams>>;
  /**
   * The destination has committed: finish what the strategy still holds (a lazy dump, the remaining pages). A
   * failure here is a warning unless the strategy uses `fallback` (the source's pending undo steps) to bring the
   * source back because the destination lost its copy (post-copy before every page arrived).
   */
  afterCommit?(fallback: Reverter): Promise<void>;
  report(): { rounds: number; precopy?: PrecopyReport };
}
