/**
 * Excerpts of CRIU logs for error messages: the `Error` lines with a little context, minus lines known to be harmless.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

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

/** Whether a line CRIU marks as an error is one of the known-harmless ones (the RLIMIT_NOFILE line). */
export function isHarmlessLogLine(line: string): boolean {
  return HARMLESS_ERRORS.some((re) => re.test(line));
}

/** The log's real Error lines with a little context, harmless ones left out, the last `maxLines` kept. */
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

/** Above this size a log is read from its tail only: a spinning CRIU restore writes gigabytes (~50 MB/s). */
export const LOG_TAIL_LIMIT_BYTES = 8 << 20;
/** How much of such a log's tail is read. */
const LOG_TAIL_BYTES = 1 << 20;

/** The excerpt of the log at `path` (of its last MiB when it is huge); undefined when it cannot be read. */
export function readLogExcerpt(path: string): LogExcerpt | undefined {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = statSync(path).size;
      const length = size > LOG_TAIL_LIMIT_BYTES ? LOG_TAIL_BYTES : size;
      const buffer = Buffer.alloc(length);
      const n = readSync(fd, buffer, 0, length, size - length);
      const text = buffer.subarray(0, n).toString('utf8');
      // From the tail: the first line is cut; leave it out.
      return excerptCriuLog(length < size ? text.slice(text.indexOf('\n') + 1) : text);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
