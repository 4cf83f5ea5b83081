import type { MigrationEvent, Phase } from '@ferry/core';

/** Without a TTY, a progress line at most this often (a log should not get one per 64 MiB). */
export const PLAIN_PROGRESS_EVERY_MS = 2000;

const CLEAR_TO_EOL = '\u001b[K';

export interface EventRendererOptions {
  json: boolean;
  tty: boolean;
  write: (s: string) => void;
  /** What the plan line says the move does ('migrating', 'cloning'). */
  verb?: string;
  /** For tests. */
  clock?: () => number;
}

/**
 * Renders a migration's events: one JSON line each with --json (docs/json-events.md), otherwise a line per phase.
 * On a TTY the running phase's line stays open and is rewritten in place as progress arrives (bytes, rate, ETA);
 * without one, progress comes as plain lines, at most every PLAIN_PROGRESS_EVERY_MS.
 */
export function createEventRenderer(options: EventRendererOptions): (e: MigrationEvent) => void {
  const now = options.clock ?? Date.now;
  // The TTY line of the running phase ("  transfer-images ..."), open until the phase ends or another line comes.
  let open: { phase: Phase; text: string } | undefined;
  const phaseStarted = new Map<Phase, number>();
  let lastPlainProgress = Number.NEGATIVE_INFINITY;
  const closeOpen = () => {
    if (open) options.write('\n');
    open = undefined;
  };
  const line = (text: string) => {
    closeOpen();
    options.write(`${text}\n`);
  };
  return (event) => {
    if (options.json) return options.write(`${JSON.stringify({ event: event.type, ...event, type: undefined })}\n`);
    switch (event.type) {
      case 'plan':
        return line(`ferry: ${options.verb ?? 'migrating'} ${event.container} to ${event.destination} with ${event.strategy} (${event.reason})`);
      case 'phase-start':
        phaseStarted.set(event.phase, now());
        if (!options.tty) return undefined;
        closeOpen();
        open = { phase: event.phase, text: `  ${event.phase} ...` };
        return options.write(open.text);
      case 'progress': {
        const text = progressText(event, now() - (phaseStarted.get(event.phase) ?? now()));
        if (options.tty) {
          if (open && open.phase !== event.phase) closeOpen();
          open = { phase: event.phase, text: `  ${event.phase} ${text}` };
          return options.write(`\r${open.text}${CLEAR_TO_EOL}`);
        }
        if (now() - lastPlainProgress < PLAIN_PROGRESS_EVERY_MS) return undefined;
        lastPlainProgress = now();
        return options.write(`  ${event.phase}: ${text}\n`);
      }
      case 'phase-end': {
        const size = event.bytes !== undefined ? `, ${formatBytes(event.bytes)}` : '';
        const done = `${event.ms} ms${size}`;
        if (options.tty && open?.phase === event.phase) {
          open = undefined;
          return options.write(`\r  ${event.phase}: ${done}${CLEAR_TO_EOL}\n`);
        }
        return line(`  ${event.phase}: ${done}`);
      }
      case 'precopy-round':
        return line(
          `    round ${event.round}: ${event.pages} pages changed (${formatBytes(event.bytes)}) of ${event.scannedPages}, ${event.ms} ms, source cpu ${event.cpuMs} ms -> ${event.next}: ${event.reason}`,
        );
      case 'warning':
        return line(`warning: ${event.message}`);
      case 'guardian':
        return line(`ferry: move ${event.id} runs in guardian ${event.pid}; it finishes or rolls back even if this command dies`);
      case 'committed':
        return line(`  committed: the destination runs the container (downtime ${event.downtimeMs} ms)`);
      case 'rolled-back':
        // Only a source that was frozen "runs again"; stopped earlier, it never stopped running.
        return line(event.sourceFrozen === false ? `  stopped before anything was frozen: the source container ran throughout` : `  rolled back: the source container runs again`);
      default:
        return undefined;
    }
  };
}

/** "512.0 MiB of 1.00 GiB, 410.3 MiB/s, ETA 1.2 s" (rate and ETA once there is something to measure). */
export function progressText(event: { bytes: number; totalBytes?: number }, elapsedMs: number): string {
  const parts = [event.totalBytes ? `${formatBytes(event.bytes)} of ${formatBytes(event.totalBytes)}` : formatBytes(event.bytes)];
  if (elapsedMs > 0 && event.bytes > 0) {
    const rate = (event.bytes * 1000) / elapsedMs;
    parts.push(`${formatBytes(rate)}/s`);
    if (event.totalBytes && event.totalBytes > event.bytes) parts.push(`ETA ${formatSeconds((event.totalBytes - event.bytes) / rate)}`);
  }
  return parts.join(', ');
}

function formatSeconds(s: number): string {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
