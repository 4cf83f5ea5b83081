/**
 * Full or incremental: the one decision of `ferry snapshot`, pure. An incremental snapshot writes only the pages
 * changed since its parent (runc --parent-path, CRIU's memory tracking with soft-dirty bits) and needs the parent
 * to restore. That is only correct when the parent is the LAST dump of this very container instance: the kernel
 * clears the soft-dirty bits at every tracked dump, so pages written before that dump and not since are found only
 * in it. The store remembers that last dump (head.json: the snapshot id and the container instance it was taken
 * of) and gives it here.
 */

export type SnapshotKind = 'full' | 'incremental';

/** Why a snapshot is full on a kernel without soft-dirty (this project's machines, arm64 everywhere). */
export const NO_MEMORY_TRACKING_REASON = 'no memory tracking on this kernel';

export interface SnapshotHead {
  /** The last snapshot taken of `instance`. */
  snapshot: string;
  /** The container instance it was taken of (see containerInstance). */
  instance: string;
}

export interface SnapshotKindInput {
  /** CRIU's memTrack feature (CriuClient.features()); undefined when the check itself failed. */
  memTrack: boolean | undefined;
  /** Why the feature check failed, when it did. */
  memTrackError?: string;
  /** The running container's instance. */
  instance: string;
  head: SnapshotHead | undefined;
  /** Whether head.snapshot still exists, complete. */
  headComplete: boolean;
}

export interface SnapshotKindDecision {
  kind: SnapshotKind;
  /** The parent snapshot's id, for an incremental one. */
  parent?: string;
  reason: string;
}

/** Full or incremental, with the reason (pure; see the header for when incremental is correct). */
export function chooseSnapshotKind(input: SnapshotKindInput): SnapshotKindDecision {
  if (input.memTrack === undefined) {
    return { kind: 'full', reason: `memory tracking unknown (${input.memTrackError ?? 'the CRIU feature check failed'})` };
  }
  if (!input.memTrack) return { kind: 'full', reason: NO_MEMORY_TRACKING_REASON };
  const head = input.head;
  if (!head) return { kind: 'full', reason: 'first snapshot of this container' };
  if (head.instance !== input.instance) {
    return { kind: 'full', reason: 'the container was restarted or reverted since the last snapshot' };
  }
  if (!input.headComplete) return { kind: 'full', reason: `the last snapshot (${head.snapshot}) was removed` };
  return { kind: 'incremental', parent: head.snapshot, reason: `pages changed since ${head.snapshot}` };
}

/**
 * A key that changes whenever the container's processes are replaced (restart, restore, revert): its init pid and
 * the runtime's creation time.
 */
export function containerInstance(pid: number | undefined, createdAt: string | undefined): string {
  return `${pid ?? '?'}@${createdAt ?? '?'}`;
}

/** Snapshots whose restore needs `id` (they name it as parent, directly or through others), oldest first. */
export function dependentsOf(id: string, snapshots: readonly { id: string; parent?: string }[]): string[] {
  const out: string[] = [];
  let frontier = new Set([id]);
  while (frontier.size > 0) {
    const next = snapshots.filter((s) => s.parent !== undefined && frontier.has(s.parent) && !out.includes(s.id)).map((s) => s.id);
    out.push(...next);
    frontier = new Set(next);
  }
  return out.sort();
}
