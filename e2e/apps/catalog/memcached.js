'use strict';
/**
 * memcached as Debian ships it: Debian's own systemd wrapper (systemd-memcached-wrapper /etc/memcached.conf) started
 * as root, which reads the stock configuration and runs memcached with `-u memcache` (it drops privileges), 64 MB.
 * Load: memcaslap (libmemcached-tools' memaslap: 90% get, 10% set, data verification on) on 16 connections, in
 * rounds of a few seconds. Data: 2000 keys written before the move read back unchanged after it (memcached's own
 * text protocol), memcaslap's verify_failed 0, the same memcached process (pid, uptime).
 */
const { readFileSync, writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { lanNode, lanTool, rounds, tcpOpen, waitUntil } = require('../app-kit');

const PORT = 11211;
const KEYS = 2000;
const ROUND_SECONDS = 5;
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

function roundResult(run) {
  const out = run.stdout;
  const number = (name) => Number(new RegExp(`${name}: (\\d+)`).exec(out)?.[1] ?? NaN);
  const errors = [];
  if (run.status !== 0) errors.push(`memcaslap exited ${run.status ?? run.signal}: ${run.stderr.trim().slice(-300)}`);
  if (number('verify_failed') > 0) errors.push(`verify_failed ${number('verify_failed')}`);
  if (/error|fail/i.test(run.stderr)) errors.push(run.stderr.trim().slice(-300));
  const tps = Number(/TPS: (\d+)/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(tps)) errors.push(`no memcaslap report: ${out.slice(-300)}`);
  return { ok: errors.length === 0, errors, maxLatencyMs: maxLatencyUs(out) / 1000, opsPerSec: tps, requests: number('cmd_get') + number('cmd_set') };
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
  loadLabel: `memcaslap -c ${CONCURRENCY} (get 90%, set 10%, verify), rounds of ${ROUND_SECONDS} s`,
  startLoad(ctx) {
    const load = rounds(() => lanTool(ctx.sb, ctx.rootfs, ['memcaslap', '-s', `${ctx.address}:${PORT}`, '-t', `${ROUND_SECONDS}s`, '-c', String(CONCURRENCY), '-T', '2', '-v', '0.1', '-S', '1s']));
    return {
      stop: async () => {
        const results = (await load.stop()).map(roundResult);
        return {
          ok: results.length > 0 && results.every((r) => r.ok),
          errors: results.flatMap((r) => r.errors),
          maxLatencyMs: Math.max(0, ...results.map((r) => r.maxLatencyMs)),
          opsPerSec: Math.round(results.reduce((sum, r) => sum + (r.opsPerSec || 0), 0) / Math.max(1, results.length)),
          requests: results.reduce((sum, r) => sum + (r.requests || 0), 0),
        };
      },
    };
  },
  async verify(ctx, load) {
    const after = keys(ctx, 'check');
    const problems = [];
    if (!after.ok) problems.push(`${after.missing} of ${KEYS} keys missing, ${after.wrong} changed`);
    if (after.pid !== ctx.before.pid || after.uptime < ctx.before.uptime) problems.push(`memcached restarted (pid ${ctx.before.pid} -> ${after.pid}, uptime ${ctx.before.uptime} -> ${after.uptime})`);
    return { ok: problems.length === 0, detail: problems.join('; ') || `${KEYS} keys stored before the move read back unchanged, ${load.requests} verified requests; same memcached process` };
  },
};
