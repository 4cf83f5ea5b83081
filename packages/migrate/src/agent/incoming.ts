/** What the agent knows about one incoming migration (or replication round), shared by its services. */
import type { DestinationPageLink } from '../pages/destination-link';
import type { StandbyRelay } from '../pages/relay-process';
import { statfsSync } from 'node:fs';
import type { LazyPagesDaemon, PageServerProcess, RuntimeName } from '@ferry/core';
import type { Journal } from '../journal/journal';
import type { PageLevels } from '../precopy/page-levels';

export interface Incoming {
  id: string;
  dir: string;
  runtime: RuntimeName;
  name: string;
  restored: boolean;
  /**
   * Set (and journaled) before the runtime is asked to restore: a restore the connection outlives may still finish
   * (dockerd or runc carry on without the agent), so an undo must then remove what it made.
   */
  restoring?: boolean;
  /** prepare-network made the copy's network namespace ahead of the restore: an abort removes it like a copy. */
  networkPrepared?: boolean;
  /** The restore in flight, true once it succeeded; an undo waits for it. Not serialised. */
  restoreSettled?: Promise<boolean>;
  committed: boolean;
  /** Post-copy only; not serialised. */
  lazy?: LazyPagesDaemon;
  /** Hash-pre-copy with a lazy restore: its page relay process, started during the rounds, waiting for its work. */
  fillRelay?: StandbyRelay;
  /** Lazy restore: lets its page relay drop the copies of the userfaultfds; only once the copy is whole or removed. */
  releaseFill?: () => Promise<void>;
  /** Post-copy after the commit: settles once the pages' outcome is recorded. */
  pagesSettled?: Promise<{ complete: true }>;
  /** An image this migration loaded into the runtime (Docker): removed again when the migration is undone. */
  loadedImage?: string;
  /** Streamed stop-and-copy: the page server receiving the dump's memory; not serialised. */
  pageServer?: PageServerProcess;
  /** Post-copy and streamed stop-and-copy: the private link CRIU's process here talks to the source over. */
  pageLink?: DestinationPageLink;
  /** Hash-based pre-copy: the chain of parent image sets the rounds write; not serialised (the files are). */
  pages?: PageLevels;
  /** The destination's journal of this move (replication rounds keep none). */
  journal?: Journal;
}

export const MIGRATION_ID = /^[A-Za-z0-9-]{8,64}$/;

/** Parts that are copies of the container's own files: the bundle, a rootfs, bind-mounted directories. */
export function isTreePart(part: string): boolean {
  return part === 'bundle' || part === 'rootfs' || /^mount\/[0-9]{1,3}$/.test(part);
}

export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
