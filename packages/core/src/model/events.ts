/** What long operations report while they run; the CLI renders these (TTY progress or one JSON line each). */

export type Phase =
  | 'connect'
  | 'negotiate'
  | 'copy-bundle'
  | 'copy-image'
  | 'prepare-network'
  | 'precopy'
  | 'freeze'
  | 'checkpoint'
  | 'resync-bundle'
  | 'final-round'
  | 'mark-held'
  | 'transfer-images'
  | 'transfer-pages'
  | 'restore'
  | 'commit'
  | 'cleanup'
  | 'rollback';

export type MigrationEvent =
  | { type: 'plan'; strategy: string; reason: string; container: string; destination: string }
  | { type: 'phase-start'; phase: Phase }
  | { type: 'phase-end'; phase: Phase; ms: number; bytes?: number; files?: number }
  /** Bytes moved so far in a long phase (transfers), with the phase's total when it is known beforehand. */
  | { type: 'progress'; phase: Phase; bytes: number; totalBytes?: number }
  | {
      type: 'precopy-round';
      round: number;
      /** Pages sent because they changed (all present pages in round 1) and their payload bytes. */
      pages: number;
      bytes: number;
      scannedPages: number;
      ms: number;
      /** CPU time the source spent on the round (reading and hashing memory, sending). */
      cpuMs: number;
      /** What the convergence policy decided after this round. */
      next: 'round' | 'freeze';
      reason: string;
    }
  | { type: 'warning'; message: string }
  /** The move runs in a guardian process (ferry's CLI), which survives the CLI. */
  | { type: 'guardian'; id: string; pid: number }
  | { type: 'committed'; downtimeMs: number }
  /** `sourceFrozen`: whether the source had been frozen (false: it ran throughout, nothing needed undoing there). */
  | { type: 'rolled-back'; reason: string; sourceFrozen?: boolean };

export type EventSink = (event: MigrationEvent) => void;
