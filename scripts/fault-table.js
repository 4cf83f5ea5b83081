#!/usr/bin/env node
// Turns the fault matrix's results (FERRY_FAULT_RESULTS, one JSON line per cell: e2e/fault-matrix.test.ts) into the
// markdown table of docs/reliability.md, and a summary line: cells, containers lost, doubled, moved, rolled back.
'use strict';
const { readFileSync } = require('node:fs');

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node scripts/fault-table.js RESULTS.jsonl\n');
  process.exit(2);
}
const STRATEGIES = ['stop-and-copy', 'hash-pre-copy', 'hash-pre-copy-lazy', 'post-copy'];
const PHASES = ['connect', 'negotiate', 'copy-bundle', 'prepare-network', 'precopy', 'freeze', 'checkpoint', 'final-round', 'mark-held', 'transfer-images', 'restore', 'commit', 'transfer-pages', 'cleanup'];
const FAULTS = ['cli', 'guardian', 'src-criu', 'agent', 'dst-criu', 'ssh'];
const key = (r) => [STRATEGIES.indexOf(r.strategy), PHASES.indexOf(r.phase), FAULTS.indexOf(r.fault)];
const rows = readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l))
  .sort((a, b) => key(a).reduce((d, v, i) => d || v - key(b)[i], 0));
const where = (r) => (r.copies.length === 1 ? (r.copies[0] === 'h1' ? 'source' : 'destination') : r.copies.length === 0 ? 'NONE (lost)' : 'BOTH (doubled)');
const out = ['| strategy | phase | kill -9 of | killed | exit (code) | outcome | the one copy | resolved in | `ferry recover` |', '|---|---|---|---|---|---|---|---|---|'];
for (const r of rows) {
  const killed = r.phaseReached ? String(r.processesKilled) : 'phase not reached';
  const exit = r.exit === null ? 'killed' : `${r.exit}${r.error ? ` (${r.error})` : ''}`;
  out.push(`| ${r.strategy} | ${r.phase} | ${r.fault} | ${killed} | ${exit} | ${r.outcome ?? 'open'} | ${where(r)} | ${(r.resolvedMs / 1000).toFixed(1)} s | ${r.recovered ? 'needed' : 'no'} |`);
}
const count = (f) => rows.filter(f).length;
out.push('');
out.push(
  `${rows.length} cells (${count((r) => r.phaseReached && r.processesKilled > 0)} with a process killed): ${count((r) => r.copies.length === 0)} lost, ${count((r) => r.copies.length > 1)} doubled, ` +
    `${count((r) => r.outcome === 'moved')} moved, ${count((r) => r.outcome === 'rolled-back')} rolled back, ` +
    `${count((r) => r.recovered)} needed \`ferry recover\`, slowest ${(Math.max(0, ...rows.map((r) => r.resolvedMs)) / 1000).toFixed(1)} s.`,
);
process.stdout.write(`${out.join('\n')}\n`);
