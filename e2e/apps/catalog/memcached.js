'use strict';
/**
 * memcached as Debian ships it: Debian's own systemd wrapper (systemd-memcached-wrapper /etc/memcached.conf) started
 * as root, which reads the stock configuration and runs memcached with `-u memcache` (it drops privileges), 64 MB.
 * Load: memcaslap (libmemcached-tools' memaslap: 90% get, 10% set, data verification on) on 16 connections held
 * until stopped. Data: 2000 keys written before the move read back unchanged after it (memcached's own
 * text protocol), no error from memcaslap, the same memcached process (pid, uptime).
 */
const { readFileSync, writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { lanNode, lanTool, tcpOpen, waitUntil } = require('../app-kit');

const PORT = 11211;
const KEYS = 2000;
/** An upper bound: the trial stops memcaslap with SIGINT a little after the move. */
const UPPER_BOUND_SECONDS = 600;
const CONCURRENCY = 16;

/** The largest Max(us) of memcaslap's periodic and global statistics tables. */
function maxLatencyUs(text) {
  let column = -1;
  let max = 0;
  for (const line of text.split('\n')) {
    const cells = line.trim().split(/\s+/);
    const header = cells.indexOf('Max(us)');
    if (header >= 0) column = header;
    else if (column >= 0 && /^(Period|Global)$/.test(cells[0]) && Number.isFinite(Number(cells[column]))) max = Math.max(max, Number(cells[column]));
  }
  return max;
}

/**
 * memcaslap stops on SIGINT without its final report, but prints running statistics every second (-S 1s): the
 * largest Max(us), and the last "Total Statistics" Global line (ops, TPS) stand for the run.
 */
function runResult(run) {
  const out = run.stdout;
  const errors = [];
  // On SIGINT memcaslap says "SIGINT handled." and exits 1: that is its normal end here.
  const stderr = run.stderr.replace(/^SIGINT handled\.\s*$/m, '').trim();
  const stoppedByUs = run.signal === 'SIGINT' || (run.status === 1 && stderr === '' && /SIGINT handled/.test(run.stderr));
  if (run.status !== 0 && !stoppedByUs) errors.push(`memcaslap exited ${run.status ?? run.signal}: ${stderr.slice(-300)}`);
  if (stderr) errors.push(`memcaslap: ${stderr.slice(-300)}`);
  const totals = out.split('Total Statistics').at(-1) ?? '';
  const global = totals.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[0] === 'Global').at(-1);
  if (!global) errors.push(`no statistics from memcaslap: ${out.slice(-300)}`);
  return { ok: errors.length === 0, errors, maxLatencyMs: maxLatencyUs(out) / 1000, opsPerSec: Number(global?.[3] ?? 0), requests: Number(global?.[2] ?? 0) };
}

const keys = (ctx, mode) => lanNode(ctx.sb, 'memcached-keys.js', [ctx.address, String(PORT), mode, String(KEYS)]);

module.exports = {
  name: 'memcached',
  kind: 'cache',
  packages: ['memcached', 'libmemcached-tools'],
  versionOf: 'memcached',
  port: PORT,
  run: { args: ['/usr/share/memcached/scripts/systemd-memcached-wrapper', '/etc/memcached.conf'] },
  deviations: 'the `-l 127.0.0.1` line of /etc/memcached.conf reads `-l 0.0.0.0`, so that LAN clients get in',
  prepare(rootfs) {
    const conf = join(rootfs, 'etc', 'memcached.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^-l 127\.0\.0\.1$/m, '-l 0.0.0.0'));
    mkdirSync(join(rootfs, 'run', 'memcached'), { recursive: true }); // the pid file's directory (-P)
  },
  async ready(ctx) {
    await waitUntil('memcached to answer', () => tcpOpen(ctx.sb, ctx.address, PORT), 60_000);
  },
  async seed(ctx) {
    const set = keys(ctx, 'set');
    if (!set.ok) throw new Error(`storing the keys failed: ${JSON.stringify(set)}`);
    ctx.before = set;
  },
  loadLabel: `memcaslap -c ${CONCURRENCY} (get 90%, set 10%, verify) on held connections`,
  startLoad(ctx) {
    const load = lanTool(ctx.sb, ctx.rootfs, ['memcaslap', '-s', `${ctx.address}:${PORT}`, '-t', `${UPPER_BOUND_SECONDS}s`, '-c', String(CONCURRENCY), '-T', '2', '-v', '0.1', '-S', '1s']);
    return { stop: async () => runResult(await load.stop('SIGINT')) };
  },
  async verify(ctx, load) {
    const after = keys(ctx, 'check');
    const problems = [];
    if (!after.ok) problems.push(`${after.missing} of ${KEYS} keys missing, ${after.wrong} changed`);
    if (after.pid !== ctx.before.pid || after.uptime < ctx.before.uptime) problems.push(`memcached restarted (pid ${ctx.before.pid} -> ${after.pid}, uptime ${ctx.before.uptime} -> ${after.uptime})`);
    return { ok: problems.length === 0, detail: problems.join('; ') || `${KEYS} keys stored before the move read back unchanged, ${load.requests} requests; same memcached process` };
  },
};
