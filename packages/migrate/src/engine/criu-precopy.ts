/**
 * CRIU pre-copy: while the container keeps running, CRIU pre-dumps its memory with soft-dirty tracking, each round
 * writing only the pages changed since the previous one (`--pre-dump --track-mem --parent-path ../N-1`), and every
 * round is sent to the destination as it completes. The convergence policy (precopy/convergence-policy.ts) decides
 * when to stop; the caller then freezes and takes the final dump with `parentImage: result.parentImage`, which
 * holds only what changed since the last round. The destination mirrors the layout below, so the relative `parent`
 * links CRIU writes resolve there too and `restore` finds every page:
 *
 *   OUTGOING/pre/1  pre/2 -> ../1  ...  pre/N -> ../N-1      images/ -> ../pre/N   (the final dump, the caller's)
 *
 * Contract: never freezes for longer than one pre-dump (CRIU freezes the tree briefly while it collects the dirty
 * pages and lets it run on). When it throws, the container runs as before, the rounds written so far stay in
 * OUTGOING and on the destination, and the caller's rollback removes both.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, type CheckpointStats } from '@ferry/core';
import { DEFAULT_CONVERGENCE_POLICY, nextPrecopyStep, type ConvergencePolicy, type PrecopyOutcome, type PrecopyRound } from '../precopy/convergence-policy';

/** The page size CRIU's page counts are in, when a round's stats lack them (x86-64, arm64 with 4 KiB pages). */
const FALLBACK_PAGE_BYTES = 4096;

export interface PreDumpRoundReport {
  round: number;
  /** Pages CRIU wrote in this round (changed since the previous round; all present pages in the first). */
  pagesWritten: number;
  /** Size of the round's images on the source. */
  imageBytes: number;
  /** Bytes sent to the destination for it. */
  bytesSent: number;
  /** How long CRIU kept the container frozen for this pre-dump, when CRIU reported it. */
  frozenMs?: number;
  /** From the start of the pre-dump to the destination's acknowledgement. */
  durationMs: number;
}

export interface CriuPreCopyResult {
  rounds: PreDumpRoundReport[];
  outcome: PrecopyOutcome;
  reason: string;
  /** The last round, relative to the final dump's images directory (OUTGOING/images). */
  parentImage: string;
}

export interface CriuPreCopyDeps {
  /** Pre-dumps the running container into imagesDir (parentImage relative to it); resolves with CRIU's stats. */
  preDump(imagesDir: string, workDir: string, parentImage: string | undefined): Promise<CheckpointStats>;
  /** Sends a round's directory to the destination as `part` (e.g. "pre/2"); resolves with the bytes sent. */
  send(part: `pre/${number}`, dir: string): Promise<number>;
  onRound?(round: PreDumpRoundReport, next: string): void;
  now?(): number;
  signal?: AbortSignal;
}

/** Runs pre-dump rounds until the policy says freeze. See the file comment for the layout and the contract. */
export async function runCriuPreCopy(outgoing: string, deps: CriuPreCopyDeps, policy: ConvergencePolicy = DEFAULT_CONVERGENCE_POLICY): Promise<CriuPreCopyResult> {
  const now = deps.now ?? Date.now;
  const rounds: PreDumpRoundReport[] = [];
  const history: PrecopyRound[] = [];
  mkdirSync(join(outgoing, 'pre'), { recursive: true, mode: 0o700 });
  for (;;) {
    const step = nextPrecopyStep(history, policy);
    if (step.action === 'freeze') {
      return { rounds, outcome: step.outcome, reason: step.reason, parentImage: join('..', 'pre', String(rounds.length)) };
    }
    if (deps.signal?.aborted) {
      throw new FerryError('ERR_ABORTED', `pre-copy interrupted after ${rounds.length} round(s)`, { hint: 'The source container keeps running.' });
    }
    const n = rounds.length + 1;
    const dir = join(outgoing, 'pre', String(n));
    const startedAtMs = now();
    const stats = await deps.preDump(dir, join(outgoing, 'pre-work', String(n)), n > 1 ? join('..', String(n - 1)) : undefined);
    const bytesSent = await deps.send(`pre/${n}`, dir);
    const durationMs = now() - startedAtMs;
    const pagesWritten = stats.pagesWritten ?? Math.ceil(stats.imageBytes / FALLBACK_PAGE_BYTES);
    const round: PreDumpRoundReport = {
      round: n,
      pagesWritten,
      imageBytes: stats.imageBytes,
      bytesSent,
      durationMs,
      ...(stats.frozenMs !== undefined ? { frozenMs: stats.frozenMs } : {}),
    };
    rounds.push(round);
    // The policy weighs what each round put on the link, against the time the round took end to end.
    history.push({ pages: pagesWritten, bytes: bytesSent, startedAtMs, durationMs });
    const next = nextPrecopyStep(history, policy);
    deps.onRound?.(round, next.action === 'freeze' ? `freeze: ${next.reason}` : `another round: ${next.reason}`);
  }
}
