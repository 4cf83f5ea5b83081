/**
 * STATE/drain.json: what every drain of this host moved, so that `ferry drain --return` can bring it back.
 *
 * - A drain is recorded before its first move (every move "pending") and updated after each one, each time through a
 *   temporary file and a rename: Ctrl-C or a crash mid-drain leaves a record of what had moved.
 * - Drains are kept as a history: a later drain (failed or not) adds its own entry and never hides what an earlier
 *   one moved. `--return` brings back every move still "moved", from any drain, and marks it "returned".
 * - A file that cannot be read is an error (ERR_STATE_CORRUPT), never "no drain recorded".
 */
import { join } from 'node:path';
import { FerryError, readFileNoFollow, replaceFileNoFollow } from '@ferry/core';
import type { DrainAssignment } from '@ferry/migrate';

export type MoveStatus = 'pending' | 'moved' | 'failed' | 'returned';

export interface DrainMove extends DrainAssignment {
  status: MoveStatus;
  error?: string;
}

export interface DrainEntry {
  id: string;
  drainedAt: string;
  /** How the destinations name this host, for the way back. */
  as: string;
  hostsFiles?: string[];
  moves: DrainMove[];
}

export interface DrainHistory {
  format: typeof FORMAT;
  drains: DrainEntry[];
}

const FORMAT = 'ferry-drains/1';
/** Older drains are forgotten once every one of their moves is settled and this many newer ones exist. */
const KEEP_DRAINS = 50;

export function drainRecordPath(stateDir: string): string {
  return join(stateDir, 'drain.json');
}

function corrupt(path: string, why: string): FerryError {
  return new FerryError('ERR_STATE_CORRUPT', `${path} cannot be read: ${why}`, {
    hint: `It records which containers drains moved away. Look at it, repair or move it aside (then bring containers back with \`ferry migrate\` from where they run).`,
    details: { path },
  });
}

/** The history in `path`; empty when there is none. A record of ferry <= 0.x (one drain, `ok` flags) is converted. */
export function loadDrains(path: string): DrainHistory {
  const text = readFileNoFollow(path);
  if (text === undefined) return { format: FORMAT, drains: [] };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw corrupt(path, `not JSON (${(err as Error).message})`);
  }
  if (isObject(doc) && doc.format === FORMAT && Array.isArray(doc.drains)) {
    for (const d of doc.drains) if (!validEntry(d)) throw corrupt(path, 'a drain entry is malformed');
    return doc as unknown as DrainHistory;
  }
  if (isObject(doc) && typeof doc.drainedAt === 'string' && Array.isArray(doc.moves)) {
    const moves = doc.moves as Record<string, unknown>[];
    if (!moves.every((m) => isObject(m) && typeof m.container === 'string' && typeof m.destination === 'string')) throw corrupt(path, 'a move is malformed');
    const legacy: DrainEntry = {
      id: `legacy-${doc.drainedAt}`,
      drainedAt: doc.drainedAt,
      as: typeof doc.as === 'string' ? doc.as : '',
      ...(Array.isArray(doc.hostsFiles) ? { hostsFiles: doc.hostsFiles as string[] } : {}),
      moves: moves.map((m) => ({ container: m.container as string, runtime: String(m.runtime ?? 'runc'), destination: m.destination as string, status: m.ok ? 'moved' : 'failed' })),
    };
    return { format: FORMAT, drains: [legacy] };
  }
  throw corrupt(path, 'not a drain record');
}

export function saveDrains(path: string, history: DrainHistory): void {
  replaceFileNoFollow(path, `${JSON.stringify(prune(history), null, 2)}\n`, 0o600);
}

/** The moves that are away and can come back, newest drain first. */
export function returnable(history: DrainHistory): { entry: DrainEntry; move: DrainMove }[] {
  return [...history.drains].reverse().flatMap((entry) => entry.moves.filter((m) => m.status === 'moved').map((move) => ({ entry, move })));
}

function prune(history: DrainHistory): DrainHistory {
  const settled = (d: DrainEntry) => d.moves.every((m) => m.status !== 'moved' && m.status !== 'pending');
  const drains = history.drains.filter((d, i) => i >= history.drains.length - KEEP_DRAINS || !settled(d));
  return { ...history, drains };
}

function validEntry(d: unknown): boolean {
  return (
    isObject(d) &&
    typeof d.id === 'string' &&
    typeof d.drainedAt === 'string' &&
    typeof d.as === 'string' &&
    Array.isArray(d.moves) &&
    d.moves.every((m) => isObject(m) && typeof m.container === 'string' && typeof m.destination === 'string' && ['pending', 'moved', 'failed', 'returned'].includes(m.status as string))
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
