import type { MigrationReport } from '@ferry/migrate';
import { formatBytes } from './render-events';

export function renderReport(r: MigrationReport): string {
  const lines = [
    `migrated ${r.runtime}:${r.container} to ${r.destination} (${r.strategy})`,
    `  downtime      ${r.downtimeMs} ms (frozen on the source until running on the destination)`,
    `  total time    ${r.totalMs} ms`,
    `  bytes sent    ${formatBytes(r.bytesSent)} (${formatBytes(r.bytesSentFrozen)} while frozen)`,
    `  phases        ${Object.entries(r.phasesMs).map(([k, v]) => `${k} ${v} ms`).join(', ')}`,
  ];
  if (r.preCopy) {
    const pages = r.preCopy.rounds.map((x) => x.pagesWritten).join(' → ');
    const final = `${r.preCopy.finalPagesWritten ?? '?'} pages, ${formatBytes(r.preCopy.finalImageBytes)}`;
    lines.push(`  pre-copy      ${r.preCopy.rounds.length} rounds (pages ${pages}), then the final dump: ${final} (${r.preCopy.outcome})`);
  }
  for (const w of r.warnings) lines.push(`  warning       ${w}`);
  return `${lines.join('\n')}\n`;
}
