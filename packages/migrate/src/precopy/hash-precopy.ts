/**
 * Hash-based pre-copy, the part that runs while the container runs: rounds of changed pages to the destination
 * agent (which writes each round as one level of a parent image chain) until the convergence policy says freeze.
 * The engine then freezes, dumps locally and sends the dump rewritten against the chain's top.
 */
import type { EventSink } from '@ferry/core';
import type { AgentPeer } from '../protocol/agent-peer';
import { DEFAULT_CONVERGENCE_POLICY, nextPrecopyStep, type ConvergencePolicy, type PrecopyOutcome, type PrecopyRound } from './convergence-policy';
import { SentPages, sendRound, type RoundStats } from './memory-rounds';

export interface HashPrecopyRound extends RoundStats {
  round: number;
  ms: number;
}

export interface HashPrecopyResult {
  sent: SentPages;
  rounds: HashPrecopyRound[];
  outcome: PrecopyOutcome;
  reason: string;
  /** Payload bytes of all rounds. */
  bytes: number;
}

export interface HashPrecopyOptions {
  peer: AgentPeer;
  migrationId: string;
  /** Host pid of the container's init. */
  pid: number;
  policy?: ConvergencePolicy;
  emit?: EventSink;
  /** Called between rounds (the engine's abort check). */
  checkpoint?: () => void;
  /** The restore will be lazy, from the rounds' pages: the agent readies its page relay meanwhile. */
  lazyRestore?: boolean;
}

export async function runRounds(options: HashPrecopyOptions): Promise<HashPrecopyResult> {
  const { peer, migrationId, pid } = options;
  const policy = options.policy ?? DEFAULT_CONVERGENCE_POLICY;
  const sent = new SentPages();
  const rounds: HashPrecopyRound[] = [];
  const history: PrecopyRound[] = [];
  let bytes = 0;
  for (;;) {
    options.checkpoint?.();
    const startedAtMs = Date.now();
    let stats!: RoundStats;
    await peer.request('precopy-round', { migrationId, ...(options.lazyRestore ? { lazyRestore: true } : {}) }, async (sink) => {
      stats = await sendRound(pid, sent, sink);
    });
    const ms = Date.now() - startedAtMs;
    bytes += stats.bytes;
    const round = { ...stats, round: rounds.length + 1, ms };
    rounds.push(round);
    history.push({ pages: stats.pages, bytes: stats.bytes, startedAtMs, durationMs: ms });
    const step = nextPrecopyStep(history, policy);
    options.emit?.({
      type: 'precopy-round',
      round: round.round,
      pages: stats.pages,
      bytes: stats.bytes,
      scannedPages: stats.scannedPages,
      ms,
      cpuMs: stats.cpuMs,
      next: step.action,
      reason: step.reason,
    });
    if (step.action === 'freeze') return { sent, rounds, outcome: step.outcome, reason: step.reason, bytes };
  }
}
