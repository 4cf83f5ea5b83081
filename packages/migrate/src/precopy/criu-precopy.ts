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
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, type CheckpointStats } from '@ferry/core';
import { DEFAULT_CONVERGENCE_POLICY, nextPrecopyStep, type ConvergencePolicy, type PrecopyOutcome, type PrecopyRound, type PrecopyStep } from './convergence-policy';

/** The page size CRIU's page counts are in, when a round's stats lack them (x86-64, arm64 with 4 KiB pages). */
const FALLBACK_PAGE_BYTES = 4096;

/** One round, in the fields every pre-copy flavour reports (MigrationReport.precopy), plus CRIU's own. */
export interface PreDumpRoundReport {
  round: number;
  /** Pages CRIU wrote in this round (changed since the previous round; all present pages in the first). */
  pages: number;
  /** Bytes sent to the destination for it (the round's images). */
  bytes: number;
  /** Pages CRIU looked at: those it wrote plus those it skipped as unchanged since the parent. */
  scannedPages: number;
  /** CRIU does not count zero pages apart; always 0 here. */
  zeroPages: number;
  /** From the start of the pre-dump to the destination's acknowledgement. */
  ms: number;
  /** CRIU's time collecting the pages (memdump), 0 when it reported none. */
  readMs: number;
  /** CPU this host spent on the round: ferry itself, and runc with the CRIU it ran. */
  cpuMs: number;
  /** How long CRIU kept the container frozen for this pre-dump, when CRIU reported it. */
  frozenMs?: number;
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
  onRound?(round: PreDumpRoundReport, next: PrecopyStep): void;
  now?(): number;
  /** CPU milliseconds this process and its reaped children have used (defaults to processCpuMs). */
  cpuMs?(): number;
  signal?: AbortSignal;
}

/** Runs pre-dump rounds until the policy says freeze. See the file comment for the layout and the contract. */
export async function runCriuPreCopy(outgoing: string, deps: CriuPreCopyDeps, policy: ConvergencePolicy = DEFAULT_CONVERGENCE_POLICY): Promise<CriuPreCopyResult> {
  const now = deps.now ?? Date.now;
  const cpuMs = deps.cpuMs ?? processCpuMs;
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
    const cpuBefore = cpuMs();
    const stats = await deps.preDump(dir, join(outgoing, 'pre-work', String(n)), n > 1 ? join('..', String(n - 1)) : undefined);
    const bytes = await deps.send(`pre/${n}`, dir);
    const durationMs = now() - startedAtMs;
    const pages = stats.pagesWritten ?? Math.ceil(stats.imageBytes / FALLBACK_PAGE_BYTES);
    const round: PreDumpRoundReport = {
      round: n,
      pages,
      bytes,
      scannedPages: pages + (stats.pagesSkippedParent ?? 0),
      zeroPages: 0,
      ms: durationMs,
      readMs: Math.round(stats.memdumpMs ?? 0),
      cpuMs: Math.max(0, Math.round(cpuMs() - cpuBefore)),
      ...(stats.frozenMs !== undefined ? { frozenMs: stats.frozenMs } : {}),
    };
    rounds.push(round);
    // The policy weighs what each round put on the link, against the time the round took end to end.
    history.push({ pages, bytes, startedAtMs, durationMs });
    deps.onRound?.(round, nextPrecopyStep(history, policy));
  }
}

/**
 * The final dump in MigrationReport.precopy's terms: of the pages it covers, those it skipped as unchanged since the
 * last round are the ones the destination already held.
 */
export function finalDumpReport(stats: CheckpointStats, cpuMs: number): {
  finalPages: number;
  finalPagesHeld: number;
  finalRound: { pages: number; bytes: number; readMs: number; cpuMs: number; latePages: number; overlappedDump: boolean };
} {
  const pages = stats.pagesWritten ?? Math.ceil(stats.imageBytes / FALLBACK_PAGE_BYTES);
  const held = stats.pagesSkippedParent ?? 0;
  return {
    finalPages: pages + held,
    finalPagesHeld: held,
    // No page arrives late and nothing overlaps: CRIU's own dump writes every changed page while frozen.
    finalRound: { pages, bytes: stats.imageBytes, readMs: Math.round(stats.memdumpMs ?? 0), cpuMs: Math.round(cpuMs), latePages: 0, overlappedDump: false },
  };
}

/**
 * CPU milliseconds used by this process and by the children it has reaped (runc, and the CRIU runc ran and reaped):
 * /proc/self/stat's cutime and cstime, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
 */
export function processCpuMs(): number {
  const own = process.cpuUsage();
  let children = 0;
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    children = (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    /* no procfs: ferry's own CPU only */
  }
  return (own.user + own.system) / 1000 + (Number.isFinite(children) ? children : 0);
}
