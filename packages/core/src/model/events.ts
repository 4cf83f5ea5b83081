/** What long operations report while they run; the CLI renders these (TTY progress or one JSON line each). */

export type Phase =
  | 'connect'
  | 'negotiate'
  | 'copy-bundle'
  | 'pre-copy'
  | 'freeze'
  | 'checkpoint'
  | 'resync-bundle'
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
  | { type: 'progress'; phase: Phase; bytes: number }
  /** One pre-copy round done while the container ran; `next` says whether another follows or the freeze, and why. */
  | { type: 'precopy-round'; round: number; pagesWritten: number; bytes: number; ms: number; frozenMs?: number; next: string }
  | { type: 'warning'; message: string }
  | { type: 'committed'; downtimeMs: number }
  | { type: 'rolled-back'; reason: string };

export type EventSink = (event: MigrationEvent) => void;
