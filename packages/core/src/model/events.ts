/** What long operations report while they run; the CLI renders these (TTY progress or one JSON line each). */

export type Phase =
  | 'connect'
  | 'negotiate'
  | 'copy-bundle'
  | 'copy-image'
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
  | { type: 'warning'; message: string }
  | { type: 'committed'; downtimeMs: number }
  | { type: 'rolled-back'; reason: string };

export type EventSink = (event: MigrationEvent) => void;
