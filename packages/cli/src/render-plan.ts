import type { DryRunResult, MigrationReport } from '@ferry/migrate';
import { formatBytes } from './render-events';

const rate = (bytesPerSec: number) => `${formatBytes(bytesPerSec)}/s`;

/** `--dry-run`'s answer: the plan, the measurements and the prediction with the numbers it comes from. */
export function renderDryRun(r: DryRunResult): string {
  const p = r.prediction;
  const m = r.measurements;
  const lines = [
    `dry run: ${r.runtime}:${r.container} to ${r.destination} (nothing was frozen or copied)`,
    `  strategy      ${r.plan.strategy}${r.plan.lazyRestore ? ', restored lazily' : ''}: ${r.plan.reason}`,
    ...(r.fallback ? [`  instead of    ${r.fallback.from}: ${r.fallback.reason}`] : []),
    `  measured      link ${rate(m.linkBytesPerSec)}; memory ${formatBytes(m.memoryBytes)}, dirtied at ${rate(m.dirtyBytesPerSec)} (passes ${m.windowMs} ms apart); files ${formatBytes(m.filesBytes)}`,
    `  expected      ${formatBytes(p.bytes)} sent, freeze ${Math.round(p.freezeMs)} ms, total ${Math.round(p.totalMs)} ms${p.rounds ? `, ${p.rounds} pre-copy round(s)` : ''}`,
    ...p.basis.map((b, i) => `  ${i === 0 ? 'from' : '    '}          ${b}`),
    ...(r.refusal ? [`  refused       ${r.refusal}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** The prediction error line of a real move's report. */
export function renderPrediction(r: MigrationReport): string[] {
  const e = r.prediction;
  if (!e) return [];
  const pct = (v: number) => `${v >= 0 ? '+' : ''}${v}%`;
  return [
    `  predicted     (${e.source}, ${e.strategy}) freeze ${e.predicted.freezeMs} ms (${pct(e.errorPct.freezeMs)}), total ${e.predicted.totalMs} ms (${pct(e.errorPct.totalMs)}), ${formatBytes(e.predicted.bytes)} (${pct(e.errorPct.bytes)})`,
  ];
}
