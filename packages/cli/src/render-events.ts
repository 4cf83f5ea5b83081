import type { MigrationEvent } from '@ferry/core';

/** Renders events: one JSON line each with --json, otherwise a line per phase (a TTY gets them as they happen). */
export function createEventRenderer(options: { json: boolean; tty: boolean; write: (s: string) => void }): (e: MigrationEvent) => void {
  return (event) => {
    if (options.json) return options.write(`${JSON.stringify({ event: event.type, ...event, type: undefined })}\n`);
    switch (event.type) {
      case 'plan':
        return options.write(`ferry: migrating ${event.container} to ${event.destination} with ${event.strategy} (${event.reason})\n`);
      case 'phase-start':
        return options.tty ? options.write(`  ${event.phase} ...`) : undefined;
      case 'phase-end': {
        const size = event.bytes !== undefined ? `, ${formatBytes(event.bytes)}` : '';
        const line = `${event.ms} ms${size}`;
        return options.write(options.tty ? ` ${line}\n` : `  ${event.phase}: ${line}\n`);
      }
      case 'precopy-round': {
        const frozen = event.frozenMs !== undefined ? `, frozen ${event.frozenMs} ms` : '';
        return options.write(`${options.tty ? '\n' : ''}    round ${event.round}: ${event.pagesWritten} pages, ${formatBytes(event.bytes)} in ${event.ms} ms${frozen}; ${event.next}\n`);
      }
      case 'warning':
        return options.write(`warning: ${event.message}\n`);
      case 'committed':
        return options.write(`  committed: the destination runs the container (downtime ${event.downtimeMs} ms)\n`);
      case 'rolled-back':
        return options.write(`\n  rolled back: the source container runs again\n`);
      default:
        return undefined;
    }
  };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
