/**
 * Snapshot ids and their order, pure. A snapshot of container CT lives in ROOT/CT/ID, where ID is
 * "SEQ-TIMESTAMP": SEQ counts up from 001 per container (more digits once past 999) and TIMESTAMP is the UTC time
 * it was taken to the second ("001-20261112T101530Z"). The sequence number orders snapshots, the time is for people;
 * users name a snapshot by its whole id, its number ("3" or "003") or "latest".
 */

const ID_PATTERN = /^(\d{3,})-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export interface SnapshotId {
  id: string;
  seq: number;
  takenAt: Date;
}

/** "001-20261112T101530Z" for seq 1 taken at that time (UTC, whole seconds). */
export function formatSnapshotId(seq: number, takenAt: Date): string {
  if (!Number.isInteger(seq) || seq < 1) throw new RangeError(`snapshot sequence numbers start at 1, got ${seq}`);
  const stamp = takenAt.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${String(seq).padStart(3, '0')}-${stamp}`;
}

/** The parts of a snapshot id, or undefined for any other name (a stray file, a temporary directory). */
export function parseSnapshotId(name: string): SnapshotId | undefined {
  const m = ID_PATTERN.exec(name);
  if (!m) return undefined;
  const [, seq, y, mo, d, h, mi, s] = m;
  const takenAt = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  if (Number.isNaN(takenAt.getTime()) || formatSnapshotId(Number(seq), takenAt).slice(-16) !== name.slice(-16)) return undefined;
  return { id: name, seq: Number(seq), takenAt };
}

/** Snapshot ids among `names`, oldest (lowest sequence number) first; other names are left out. */
export function sortSnapshotIds(names: readonly string[]): SnapshotId[] {
  return names
    .map(parseSnapshotId)
    .filter((s): s is SnapshotId => s !== undefined)
    .sort((a, b) => a.seq - b.seq || a.takenAt.getTime() - b.takenAt.getTime() || (a.id < b.id ? -1 : 1));
}

/** The next sequence number: one past the highest among `names` (complete or not), 1 for none. */
export function nextSnapshotSeq(names: readonly string[]): number {
  return sortSnapshotIds(names).reduce((max, s) => Math.max(max, s.seq), 0) + 1;
}

/**
 * The id `ref` names among `ids`: the id itself, a sequence number ("3", "003") or "latest" (the highest number).
 * Undefined when it names none of them.
 */
export function resolveSnapshotRef(ref: string, ids: readonly string[]): string | undefined {
  const sorted = sortSnapshotIds(ids);
  if (ref === 'latest') return sorted[sorted.length - 1]?.id;
  const exact = sorted.find((s) => s.id === ref);
  if (exact) return exact.id;
  if (/^\d+$/.test(ref)) return sorted.find((s) => s.seq === Number(ref))?.id;
  return undefined;
}
