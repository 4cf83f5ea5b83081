/**
 * Excerpts of CRIU logs for error messages: the `Error` lines with a little context, minus lines known to be harmless.
 */
import { readFileSync } from 'node:fs';

/** Lines CRIU marks as errors that do not mean failure on ferry's hosts. */
const HARMLESS_ERRORS: readonly RegExp[] = [
  // Root without CAP_SYS_RESOURCE (containers, some VMs) cannot raise its own RLIMIT_NOFILE; CRIU carries on.
  /rlimit: Can't setup RLIMIT_NOFILE for self/,
];

const ERROR_LINE = /\bError \(|^Error|\(\d+\.\d+\)\s+Error/;

export interface LogExcerpt {
  lines: string[];
  /** How many error lines were found in total (the excerpt may be shorter). */
  errorCount: number;
}

export function isHarmlessLogLine(line: string): boolean {
  return HARMLESS_ERRORS.some((re) => re.test(line));
}

export function excerptCriuLog(text: string, options: { contextLines?: number; maxLines?: number } = {}): LogExcerpt {
  const context = options.contextLines ?? 2;
  const maxLines = options.maxLines ?? 30;
  const lines = text.split('\n');
  const keep = new Set<number>();
  let errorCount = 0;
  lines.forEach((line, index) => {
    if (!ERROR_LINE.test(line) || isHarmlessLogLine(line)) return;
    errorCount++;
    // Context shows what led to the error; a harmless error line there would read as a second failure.
    for (let i = Math.max(0, index - context); i <= index; i++) if (!isHarmlessLogLine(lines[i] ?? '')) keep.add(i);
  });
  const picked = [...keep].sort((a, b) => a - b);
  const out: string[] = [];
  let previous = -2;
  for (const index of picked) {
    if (index !== previous + 1 && out.length > 0) out.push('...');
    out.push(lines[index] ?? '');
    previous = index;
  }
  // The last lines are the ones that explain the failure; earlier ones are often consequences of retries.
  return { lines: out.length > maxLines ? ['...', ...out.slice(-maxLines)] : out, errorCount };
}

export function readLogExcerpt(path: string): LogExcerpt | undefined {
  try {
    return excerptCriuLog(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}
