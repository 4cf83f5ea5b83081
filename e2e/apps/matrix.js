'use strict';
/**
 * The compatibility matrix: each trial appends its row (trial.js) to the file named by FERRY_APPS_RESULTS, one JSON
 * object a line; `node e2e/apps/matrix.js FILE` prints them as the Markdown table of docs/compatibility.md.
 */
const { appendFileSync, readFileSync } = require('node:fs');

function recordRow(row, file = process.env.FERRY_APPS_RESULTS) {
  if (!file) return;
  const { loadResult, report, error, ...kept } = row;
  appendFileSync(file, `${JSON.stringify({ ...kept, at: new Date().toISOString(), requests: loadResult?.requests ?? loadResult?.transactions, phasesMs: report?.phasesMs, bytesSentFrozen: report?.bytesSentFrozen })}\n`);
}

const COLUMNS = ['application', 'version', 'kind', 'runtime', 'strategy (auto)', 'frozen', 'client-seen gap', 'load during the move', 'result'];

function renderMatrix(rows) {
  const ms = (v) => (Number.isFinite(v) ? `${v} ms` : '-');
  const lines = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const result = r.result === 'ok' ? `ok: ${r.detail}` : `**FAILED**: ${r.result}`;
    const gap = r.gapCapped ? `≥ ${ms(r.gapMs)} (the tool's histogram ends there)` : ms(r.gapMs);
    const cells = [r.app, r.version, r.kind, r.runtime, r.strategy ?? '-', ms(r.frozenMs), gap, r.load, result];
    lines.push(`| ${cells.map((c) => String(c).replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  const rows = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  process.stdout.write(renderMatrix(rows));
}

module.exports = { recordRow, renderMatrix };
