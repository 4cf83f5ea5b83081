/**
 * The one way runtime adapters resolve their options (better-sqlite3's shape): once, into a frozen object with every
 * default filled in; an unknown key is bad input with a "did you mean"; every deadline (a key ending in `Ms`) must be
 * a positive number. Tools named by `tool('runc')` are looked up in the resolved searchPath.
 */
import { findExecutable } from '../host/find-executable';
import { FerryError } from '../model/ferry-error';

/** Where the runtime tools are looked for when the caller passes no PATH (core never reads the environment). */
export const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Deadline of a dump tool run (`runc checkpoint`, `lxc-checkpoint`); CRIU and its children are killed after it. */
export const DEFAULT_CHECKPOINT_TIMEOUT_MS = 300_000;
/**
 * Deadline of a restore. Needed: CRIU 4.2.1 spins forever (and grows restore.log by ~50 MB/s) when a pages image is
 * shorter than its pagemap says, e.g. after a truncated transfer.
 */
export const DEFAULT_RESTORE_TIMEOUT_MS = 300_000;
/** Deadline of the quick commands (state, list, pause, resume, kill, delete, API calls). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** How long `ferry ps` waits for a daemon that may be stuck (Docker). */
export const DEFAULT_AVAILABILITY_TIMEOUT_MS = 3_000;

/** A default that is an executable found in searchPath (or the bare name when it is not there). */
export class ToolDefault {
  constructor(readonly tool: string) {}
}

export function tool(name: string): ToolDefault {
  return new ToolDefault(name);
}

/** Every option's default: a value, or tool(NAME). `searchPath` must be among them. */
export type OptionDefaults<T> = { readonly [K in keyof T]-?: T[K] | ToolDefault };

/**
 * Resolves `input` against `defaults`: unknown keys rejected (with a "did you mean"), deadlines checked, tools found,
 * then `finish` (normalisation that needs the whole object) and a freeze.
 */
export function resolveAdapterOptions<T extends { searchPath: string }>(
  adapter: string,
  input: Partial<T>,
  defaults: OptionDefaults<T>,
  finish: (resolved: T) => T = (resolved) => resolved,
): Readonly<T> {
  const known = Object.keys(defaults);
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      const guess = closest(key, known);
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${adapter} adapter: unknown option "${key}"${guess ? `; did you mean "${guess}"?` : ''}`, {
        details: { known },
      });
    }
  }
  for (const key of known.filter((k) => k.endsWith('Ms'))) {
    const value = (input as Record<string, unknown>)[key];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${adapter} adapter: ${key} must be a positive number, got ${String(value)}`);
    }
  }
  const searchPath = input.searchPath ?? (defaults.searchPath as string);
  const out: Record<string, unknown> = {};
  for (const key of known) {
    const given = (input as Record<string, unknown>)[key];
    const fallback = (defaults as Record<string, unknown>)[key];
    if (given !== undefined) out[key] = given;
    else if (fallback instanceof ToolDefault) out[key] = findExecutable(fallback.tool, searchPath) ?? fallback.tool;
    else out[key] = fallback;
  }
  return Object.freeze(finish(out as T));
}

/** The candidate nearest to `key` (case-insensitive edit distance), when it is near enough to be a typo. */
export function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = levenshtein(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
