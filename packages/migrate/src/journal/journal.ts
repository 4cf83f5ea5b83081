/**
 * The journal of one move on one host: STATE/migrations/ID/journal, JSON lines, each appended and fsynced *before*
 * the step it announces acts. Whoever picks a move up after a crash (the watchdog, `ferry recover`, the agent at
 * start) reads what is held and how far the commit got from here, and nowhere else.
 *
 * Source: begin → plan → phase... with hold/release of everything that must be undone or watched → commit-intent →
 * committed → done. Destination: begin → hold/release → its decision (decision.ts) → done.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, type FenceRecord, type Phase, type RuntimeName } from '@ferry/core';
import type { Destination } from '../hosts/resolve-host';
import type { ProcessId } from './proc-identity';

export type JournalRole = 'source' | 'destination';

/**
 * What a move holds: `owner` (the process driving it: guardian or agent), `watchdog`, `prepared` (the destination
 * holds a migration directory), `frozen` (the container's cgroup), `fence` (its network), `dump` (runc/criu
 * processes of a dump that holds the tasks), `page-server` (a lazy dump's port), `restored` (a container restored
 * on the destination), `lazy-daemon`, `page-link` (the keeper of post-copy's resumable link), `relay` (the
 * detached relay filling a lazy restore from the destination's own pages), `image-loaded`.
 */
export type HoldKind = 'owner' | 'watchdog' | 'prepared' | 'frozen' | 'fence' | 'dump' | 'page-server' | 'restored' | 'lazy-daemon' | 'page-link' | 'relay' | 'image-loaded';

export interface HoldRecord {
  t: 'hold';
  kind: HoldKind;
  pids?: ProcessId[];
  /** Dumps: a string in the command line of the dump's processes (its images directory). */
  marker?: string;
  /** Dumps: host pid of the container's init, for CRIU's network-lock rules in its netns. */
  initPid?: number;
  port?: number;
  name?: string;
  image?: string;
  /** A network fence, as the adapter recorded it (unfenceNetwork lifts it from any process). */
  fence?: FenceRecord;
}

export type JournalRecord = { at?: number } & (
  | {
      t: 'begin';
      role: JournalRole;
      id: string;
      runtime: RuntimeName;
      container: string;
      /** The other host: a name for messages; the source also keeps how to reach it (recovery asks it). */
      peer: string;
      destination?: Destination;
      target?: string;
      clone?: boolean;
    }
  | { t: 'plan'; strategy: string; reason: string; lazyRestore?: true }
  | { t: 'phase'; phase: Phase }
  | HoldRecord
  | { t: 'release'; kind: HoldKind }
  | { t: 'commit-intent' }
  | { t: 'committed' }
  | { t: 'aborted' }
  | { t: 'note'; message: string }
  | { t: 'done'; outcome: MoveOutcome; error?: { code: string; message: string } }
);

export type MoveOutcome = 'moved' | 'cloned' | 'rolled-back' | 'failed' | 'aborted' | 'kept';

/** The journal folded into what it says now. */
export interface JournalState {
  role: JournalRole;
  id: string;
  runtime: RuntimeName;
  container: string;
  peer: string;
  destination?: Destination;
  target?: string;
  clone: boolean;
  strategy?: string;
  /** Hash-pre-copy restored lazily: like post-copy, the source is held past the commit until every page is in. */
  lazyRestore?: boolean;
  phase?: Phase;
  holds: Map<HoldKind, HoldRecord>;
  commitIntent: boolean;
  committed: boolean;
  aborted: boolean;
  done?: { outcome: MoveOutcome; error?: { code: string; message: string } };
  startedAt?: number;
  notes: string[];
}

export const JOURNAL_FILE = 'journal';

export function migrationDir(stateDir: string, id: string): string {
  return join(stateDir, 'migrations', id);
}

/** What a source move leaves besides its journal: images, work and pre-copy directories. */
export function removeMoveFiles(dir: string): void {
  for (const sub of ['images', 'work', 'pre', 'pre-work', 'cpuinfo']) rmSync(join(dir, sub), { recursive: true, force: true });
}

export class Journal {
  private constructor(
    readonly dir: string,
    private readonly fd: number,
  ) {}

  /** Creates the move's directory (0700) and journal; refuses a journal that exists already. */
  static create(dir: string, begin: Extract<JournalRecord, { t: 'begin' }>): Journal {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let fd: number;
    try {
      // O_APPEND: the guardian, its watchdog and recovery append to one journal; each record is one write.
      fd = openSync(join(dir, JOURNAL_FILE), 'ax', 0o600);
    } catch (err) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `migration ${begin.id} has a journal already (${dir})`, { hint: 'Every move needs a new id.', cause: err });
    }
    fsyncDir(dir);
    const journal = new Journal(dir, fd);
    journal.append(begin);
    return journal;
  }

  /** Opens an existing journal to append to (recovery taking a move over). */
  static open(dir: string): Journal {
    return new Journal(dir, openSync(join(dir, JOURNAL_FILE), 'a'));
  }

  /** Appends and fsyncs: when this returns, the record survives a crash of this process or of the host. */
  append(record: JournalRecord): void {
    writeSync(this.fd, `${JSON.stringify({ ...record, at: record.at ?? Date.now() })}\n`);
    fsyncSync(this.fd);
  }

  hold(record: Omit<HoldRecord, 't'>): void {
    this.append({ t: 'hold', ...record });
  }

  release(kind: HoldKind): void {
    this.append({ t: 'release', kind });
  }

  state(): JournalState {
    return readJournal(this.dir);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Reads and folds a journal; a torn last line (a crash mid-write) is ignored, as it announced nothing acted on. */
export function readJournal(dir: string): JournalState {
  const lines = readFileSync(join(dir, JOURNAL_FILE), 'utf8').split('\n').filter(Boolean);
  const records: JournalRecord[] = [];
  for (const line of lines) {
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      /* torn write */
    }
  }
  return foldJournal(records);
}

export function foldJournal(records: readonly JournalRecord[]): JournalState {
  const begin = records[0];
  if (begin?.t !== 'begin') throw new FerryError('ERR_ROLLBACK_FAILED', 'a migration journal must start with its begin record', { hint: 'Inspect the journal by hand; ferry cannot tell what this move holds.' });
  const state: JournalState = {
    role: begin.role,
    id: begin.id,
    runtime: begin.runtime,
    container: begin.container,
    peer: begin.peer,
    destination: begin.destination,
    target: begin.target,
    clone: begin.clone === true,
    holds: new Map(),
    commitIntent: false,
    committed: false,
    aborted: false,
    startedAt: begin.at,
    notes: [],
  };
  for (const r of records.slice(1)) {
    switch (r.t) {
      case 'plan':
        state.strategy = r.strategy;
        state.lazyRestore = r.lazyRestore === true;
        break;
      case 'phase':
        state.phase = r.phase;
        break;
      case 'hold':
        // A later hold of the same kind adds to it (a dump's pids once it is ready).
        state.holds.set(r.kind, { ...state.holds.get(r.kind), ...r });
        break;
      case 'release':
        state.holds.delete(r.kind);
        break;
      case 'commit-intent':
        state.commitIntent = true;
        break;
      case 'committed':
        state.committed = true;
        break;
      case 'aborted':
        state.aborted = true;
        break;
      case 'note':
        state.notes.push(r.message);
        break;
      case 'done':
        state.done = { outcome: r.outcome, error: r.error };
        break;
      default:
        break;
    }
  }
  return state;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
