import type { MigrationReport } from '@ferry/migrate';
import { formatBytes } from './render-events';
import { renderPrediction } from './render-plan';

export function renderReport(r: MigrationReport, options: { clone?: boolean } = {}): string {
  const lines = [
    options.clone
      ? `cloned ${r.runtime}:${r.container} to ${r.destination} as ${r.destinationName}`
      : `migrated ${r.runtime}:${r.container} to ${r.destination} (${r.strategy}${r.lazyRestore ? ', restored lazily' : ''})`,
    options.clone
      ? `  source frozen ${r.downtimeMs} ms (while it was dumped; it ran on afterwards)`
      : `  downtime      ${r.downtimeMs} ms (frozen on the source until running on the destination)`,
    `  total time    ${r.totalMs} ms`,
    `  bytes sent    ${formatBytes(r.bytesSent)} (${formatBytes(r.bytesSentFrozen)} while frozen)`,
    `  phases        ${Object.entries(r.phasesMs).map(([k, v]) => `${k} ${v} ms`).join(', ')}`,
  ];
  const p = r.precopy;
  if (p) {
    const held = p.finalPages > 0 ? ((100 * p.finalPagesHeld) / p.finalPages).toFixed(1) : '0';
    lines.push(
      `  pre-copy      ${p.rounds.length} round(s), then froze: ${p.reason} (${p.outcome})`,
      `                the destination already held ${held}% of the final ${p.finalPages} pages`,
    );
  }
  const steps = r.restoreSteps;
  if (steps) lines.push(`  restore       ${renderRestoreSteps(steps)}`);
  lines.push(...renderPrediction(r));
  for (const w of r.warnings) lines.push(`  warning       ${w}`);
  return `${lines.join('\n')}\n`;
}

/** The destination's restore by step: "agent 12 ms, prepare 230 ms, tool 480 ms (CRIU 300 ms), finish 40 ms". */
export function renderRestoreSteps(s: NonNullable<MigrationReport['restoreSteps']>): string {
  const parts = [`agent ${s.agentMs} ms`];
  if (s.prepareMs !== undefined) parts.push(`prepare ${s.prepareMs} ms`);
  if (s.toolMs !== undefined) parts.push(`tool ${s.toolMs} ms${s.criu ? ` (CRIU ${Math.round(s.criu.restoreMs)} ms, forking ${Math.round(s.criu.forkingMs)} ms)` : ''}`);
  if (s.finishMs !== undefined) parts.push(`finish ${s.finishMs} ms`);
  return parts.join(', ');
}
