/** What a move is asked to do, what it needs from its host, and what it reports: the engine's public types. */
import type { ContainerInfo, CriuClient, EventSink, Phase, RuntimeAdapter, RuntimeName } from '@ferry/core';
import type { AgentConnection } from '../protocol/agent-connection';
import type { HostSummary, RemoteOutcome, RestoreResultMessage, StatusOptions } from '../protocol/agent-messages';
import type { Destination } from '../hosts/resolve-host';
import type { ConvergencePolicy } from '../precopy/convergence-policy';
import type { HashPrecopyResult } from '../precopy/hash-precopy';
import type { FaultPoint } from './fault-points';
import type { PredictionError } from './predict-move';
import type { RequestedStrategy, StrategyName } from './plan-migration';

export interface MigrateDeps {
  findContainer(name: string): Promise<{ adapter: RuntimeAdapter; container: ContainerInfo }>;
  criu: CriuClient;
  connectAgent(destination: Destination, signal?: AbortSignal): Promise<AgentConnection>;
  /**
   * Undo migration `id` on the destination over a fresh connection unless it committed there (the destination
   * decides: an undecided move becomes aborted); `kept` says it committed.
   */
  cleanupRemote(destination: Destination, migrationId: string): Promise<{ kept: boolean }>;
  /** The destination's decision on `id`, without changing it. */
  remoteStatus(destination: Destination, migrationId: string, options?: StatusOptions): Promise<RemoteOutcome>;
  localHost(): Promise<HostSummary>;
  stateDir: string;
}

export interface MigrateRequest {
  container: string;
  destination: Destination;
  strategy: RequestedStrategy;
  tcpEstablished: boolean;
  fileLocks: boolean;
  extUnixSk: boolean;
  /** The bundle is on storage both hosts see at the same path: do not copy it. */
  sharedStorage: boolean;
  /**
   * Stop-and-copy: stream memory pages to a page server on the destination while the dump runs (default), rather
   * than dumping to this host's disk and sending the images afterwards.
   */
  streamPages?: boolean;
  /**
   * Hash-pre-copy: restore without writing the memory while frozen (CRIU's lazy restore, served from the pages the
   * destination holds), keeping the source held until every page is in the copy.
   */
  lazyRestore?: boolean;
  onEvent?: EventSink;
  /** Aborts the move before its point of no return; ignored after it (the move then finishes). */
  signal?: AbortSignal;
  /** Pre-copy: when to stop rounds (default DEFAULT_CONVERGENCE_POLICY). */
  convergence?: ConvergencePolicy;
  /**
   * Clone instead of move: the source keeps running (frozen only while it is dumped) and the copy starts under
   * `name` on the destination, with new addresses when the container has any.
   */
  clone?: { name: string; readdress?: Record<string, string> };
  /** The move's id (the guardian's journal directory); a new one when absent. */
  migrationId?: string;
  /**
   * --max-downtime: measure before the move (assess-move.ts); fall back to a strategy whose predicted freeze fits,
   * or refuse with ERR_PRECHECK_DOWNTIME before anything is frozen.
   */
  maxDowntimeMs?: number;
  /** --bandwidth: cap on the bytes per second of images, bundles and pages sent over the agent connection. */
  bandwidthBytesPerSec?: number;
  /** FERRY_FAULT, parsed: what to do at which step (tests of the recovery paths). */
  faults?: readonly FaultPoint[];
}

export interface MigrationReport {
  migrationId: string;
  container: string;
  runtime: RuntimeName;
  destination: string;
  /** Name of the container on the destination (differs for clones). */
  destinationName: string;
  strategy: StrategyName;
  /** hash-pre-copy restored lazily (--lazy-restore, or --max-downtime chose it): memory filled in after the commit. */
  lazyRestore?: true;
  strategyReason: string;
  /** From freeze to the restored container running on the destination. */
  downtimeMs: number;
  totalMs: number;
  /** Payload bytes sent to the destination (tar streams), by phase. */
  bytesSent: number;
  bytesSentFrozen: number;
  phasesMs: Partial<Record<Phase, number>>;
  rounds: number;
  /** Pre-copy: each round, why the rounds ended, and what the final dump left to send. */
  precopy?: PrecopyReport;
  restoredPid?: number;
  /** The restore phase on the destination, step by step (an older agent does not say). */
  restoreSteps?: RestoreResultMessage['steps'];
  /** What was predicted for this move (by --max-downtime's measurements or a recent --dry-run) against what happened. */
  prediction?: PredictionReport;
  warnings: string[];
}

export type PredictionReport = PredictionError & { strategy: StrategyName; source: 'dry-run' | 'max-downtime' };

export interface PrecopyReport {
  outcome: HashPrecopyResult['outcome'];
  reason: string;
  rounds: { round: number; pages: number; bytes: number; scannedPages: number; zeroPages: number; ms: number; readMs: number; cpuMs: number }[];
  /** Pages in the final dump, and how many of them the destination already held. */
  finalPages: number;
  finalPagesHeld: number;
  /** The round on the frozen container: what it sent, and its cost. */
  finalRound?: { pages: number; bytes: number; readMs: number; cpuMs: number; latePages: number; overlappedDump: boolean };
}
