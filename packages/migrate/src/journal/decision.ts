/**
 * The destination's word on a move, made once: `committed` or `aborted`, whichever is written first, never both.
 * The live agent (commit, or undo when its connection drops), `ferry agent --cleanup ID` and `--status ID` all go
 * through decide(), so two processes racing on one move agree: the file is created with O_EXCL, and the loser reads
 * the winner's word. The source's recovery asks for it (the destination is the authority on whether a move
 * committed). Post-copy adds the pages' outcome the same way: `complete` or `lost`.
 *
 * The words live in STATE/decisions/ID.*, apart from the move's directory, which an abort deletes: the answer must
 * outlive it.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type Decision = 'committed' | 'aborted';
export type PagesOutcome = 'complete' | 'lost';

const DECISION_FILE = 'decision';
const PAGES_FILE = 'pages';

function decisionsDir(stateDir: string): string {
  return join(stateDir, 'decisions');
}

function writeOnce<T extends string>(stateDir: string, file: string, value: T): T {
  const dir = decisionsDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Written whole under a private name, then linked into place: link() fails if the word exists, and a reader never
  // sees a half-written one.
  const draft = join(dir, `.${file}.${process.pid}.${Date.now()}`);
  const fd = openSync(draft, 'wx', 0o600);
  try {
    writeSync(fd, value);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(draft, join(dir, file));
    return value;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const standing = readOnce<T>(stateDir, file);
    if (standing === undefined) throw err;
    return standing;
  } finally {
    unlinkSync(draft);
  }
}

function readOnce<T extends string>(stateDir: string, file: string): T | undefined {
  const dir = decisionsDir(stateDir);
  try {
    const text = readFileSync(join(dir, file), 'utf8').trim();
    return text ? (text as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Records `wanted` for move `id` unless a decision exists already; returns the decision that stands. */
export function decide(stateDir: string, id: string, wanted: Decision): Decision {
  return writeOnce(stateDir, `${id}.${DECISION_FILE}`, wanted);
}

export function readDecision(stateDir: string, id: string): Decision | undefined {
  return readOnce<Decision>(stateDir, `${id}.${DECISION_FILE}`);
}

export function decidePages(stateDir: string, id: string, outcome: PagesOutcome): PagesOutcome {
  return writeOnce(stateDir, `${id}.${PAGES_FILE}`, outcome);
}

export function readPagesOutcome(stateDir: string, id: string): PagesOutcome | undefined {
  return readOnce<PagesOutcome>(stateDir, `${id}.${PAGES_FILE}`);
}
