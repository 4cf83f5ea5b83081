import type { MigrationEvent } from '@ferry/core';

/** Renders events: one JSON line each with --json, otherwise a line per phase (a TTY gets them as they happen). */
export function createEventRenderer(options: { json: boolean; tty: boolean; write: (s: string) => void }): (e: MigrationEvent) => void {
  // A TTY's phase line stays open ("  precopy ...") until the phase ends; lines in between close it first.
  let open = false;
  return (event) => {
    if (options.json) return options.write(`${JSON.stringify({ event: event.type, ...event, type: undefined })}\n`);
    switch (event.type) {
      case 'plan':
        return options.write(`ferry: migrating ${event.container} to ${event.destination} with ${event.strategy} (${event.reason})\n`);
      case 'phase-start':
        if (!options.tty) return undefined;
        open = true;
        return options.write(`  ${event.phase} ...`);
      case 'phase-end': {
        const size = event.bytes !== undefined ? `, ${formatBytes(event.bytes)}` : '';
        const line = `${event.ms} ms${size}`;
        const wasOpen = open;
        open = false;
        return options.write(options.tty && wasOpen ? ` ${line}\n` : `  ${event.phase}: ${line}\n`);
      }
      case 'precopy-round': {
        const lead = open ? '\n' : '';
        open = false;
        return options.write(
          `${lead}    round ${event.round}: ${event.pages} pages changed (${formatBytes(event.bytes)}) of ${event.scannedPages}, ${event.ms} ms, source cpu ${event.cpuMs} ms -> ${event.next}: ${event.reason}\n`,
        );
      }
      case 'warning':
        return options.write(`warning: ${event.message}\n`);
      case 'guardian':
        return options.write(`ferry: move ${event.id} runs in guardian ${event.pid}; it finishes or rolls back even if this command dies\n`);
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
