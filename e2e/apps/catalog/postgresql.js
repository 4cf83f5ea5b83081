'use strict';
/**
 * PostgreSQL 15 as Debian ships it: the cluster 15/main that postgresql-common's maintainer scripts create, its
 * stock postgresql.conf, started by Debian's own wrapper as the postgres user (`pg_ctlcluster --foreground --stdlog
 * 15 main start`: postgres in the foreground with its stderr on /var/log/postgresql/postgresql-15-main.log, the
 * file Debian's pg_ctl start logs to). Load: pgbench's built-in TPC-B-like transaction on 8 connections, in rounds in rounds of a few seconds. Every committed transaction present, checked by the database: each pgbench transaction inserts one row into
 * pgbench_history and moves the same delta through an account, a teller and a branch, so the history must count
 * exactly the transactions pgbench saw committed, and the four sums must agree.
 */
const { appendFileSync, chownSync, existsSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { lanTool, rounds, runOnLan, tcpOpen, waitUntil } = require('../app-kit');
const { idsOf } = require('../bundle');

const PORT = 5432;
const SCALE = 4;
const CLIENTS = 8;
const ROUND_SECONDS = 5;
const LOG_MARK = '--- aggregate log ---';
const BIN = '/usr/lib/postgresql/15/bin';

function psql(ctx, sql) {
  const r = runOnLan(ctx.sb, ctx.rootfs, [`${BIN}/psql`, '-h', ctx.address, '-U', 'postgres', '-d', 'postgres', '-XAtq', '-F', ' ', '-c', sql]);
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** pgbench's report, and its --aggregate-interval log: "start count sum sum2 min max ..." (latencies in µs). */
function pgbenchResult(run) {
  const [report, aggregate = ''] = run.stdout.split(LOG_MARK);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(report)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(report)?.[1] ?? 0);
  const tps = Number(/tps = ([\d.]+)/.exec(report)?.[1] ?? 0);
  const lines = aggregate.split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter((f) => f.length >= 6 && f.every(Number.isFinite));
  const maxUs = Math.max(0, ...lines.map((f) => f[5]));
  /** Seconds (epoch) in which some transaction completed. */
  const busySeconds = lines.filter((f) => f[1] > 0).map((f) => f[0]);
  const errors = [];
  if (run.status !== 0) errors.push(`pgbench exited ${run.status ?? run.signal}: ${run.stderr.trim().slice(-500)}`);
  if (/aborted|connection to server .* lost|server closed the connection/i.test(run.stderr)) errors.push(`clients lost: ${run.stderr.trim().slice(-500)}`);
  if (failed > 0) errors.push(`${failed} failed transactions`);
  if (!Number.isFinite(processed)) errors.push(`no pgbench report: ${report.slice(-300)}`);
  return { ok: errors.length === 0, errors, maxLatencyMs: maxUs / 1000, opsPerSec: Math.round(tps), transactions: processed, busySeconds };
}

/** The longest stretch without a busy second, in ms (whole seconds between two busy ones). */
function idleMs(busySeconds) {
  const sorted = [...new Set(busySeconds)].sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < sorted.length; i++) longest = Math.max(longest, sorted[i] - sorted[i - 1] - 1);
  return longest * 1000;
}

module.exports = {
  name: 'postgresql',
  kind: 'relational database, multi-process',
  packages: ['postgresql-15'],
  versionOf: 'postgresql-15',
  port: PORT,
  run: { args: ['/usr/bin/pg_ctlcluster', '--foreground', '--stdlog', '-o', '-c listen_addresses=*', '15', 'main', 'start'], user: 'postgres' },
  deviations: "listen_addresses='*' (pg_ctlcluster -o) and one pg_hba.conf line that lets the LAN (10.77.0.0/24) in",
  prepare(rootfs) {
    appendFileSync(join(rootfs, 'etc/postgresql/15/main/pg_hba.conf'), '\n# the sandbox LAN (ferry e2e/apps)\nhost all all 10.77.0.0/24 trust\n');
    // The socket directory systemd's tmpfiles.d makes at boot (postgresql-common ships the rule).
    const run = join(rootfs, 'run', 'postgresql');
    if (!existsSync(run)) mkdirSync(run, { recursive: true, mode: 0o2775 });
    const { uid, gid } = idsOf(rootfs, 'postgres');
    chownSync(run, uid, gid);
  },
  async ready(ctx) {
    await waitUntil('postgres to accept queries', () => tcpOpen(ctx.sb, ctx.address, PORT) && psql(ctx, 'SELECT 1') === '1', 90_000, 500);
  },
  async seed(ctx) {
    const r = runOnLan(ctx.sb, ctx.rootfs, [`${BIN}/pgbench`, '-h', ctx.address, '-U', 'postgres', '-i', '-q', '-s', String(SCALE), 'postgres'], { timeoutMs: 180_000 });
    if (r.status !== 0) throw new Error(`pgbench -i: ${r.stderr.trim().slice(-1000)}`);
    ctx.startedAt = psql(ctx, 'SELECT pg_postmaster_start_time()');
  },
  loadLabel: `pgbench -c ${CLIENTS} TPC-B-like, scale ${SCALE}`,
  startLoad(ctx) {
    // Rounds of ROUND_SECONDS (pgbench prints no report when interrupted), with -n: by default each run would
    // vacuum and TRUNCATE pgbench_history first, and the history would hold the last round only. Each round's
    // per-second log goes to a tmpfs of the client's own mount namespace, then to stdout after the report.
    const script = `${BIN}/pgbench -h ${ctx.address} -U postgres -n -c ${CLIENTS} -j 2 -T ${ROUND_SECONDS} --log --aggregate-interval=1 --log-prefix=/tmp/pgb postgres; s=$?; echo '${LOG_MARK}'; cat /tmp/pgb*; rm -f /tmp/pgb*; exit $s`;
    const load = rounds(() => lanTool(ctx.sb, ctx.rootfs, ['sh', '-c', script]));
    return {
      stop: async () => {
        const results = (await load.stop()).map(pgbenchResult);
        return {
          ok: results.length > 0 && results.every((r) => r.ok),
          errors: results.flatMap((r) => r.errors),
          // A round that starts during the freeze waits in connect, which pgbench's latencies leave out: the gap is
          // also the longest run of seconds in which no transaction completed, across rounds (1 s resolution).
          maxLatencyMs: Math.max(0, ...results.map((r) => r.maxLatencyMs), idleMs(results.flatMap((r) => r.busySeconds))),
          opsPerSec: Math.round(results.reduce((sum, r) => sum + r.opsPerSec, 0) / Math.max(1, results.length)),
          transactions: results.reduce((sum, r) => sum + (r.transactions || 0), 0),
        };
      },
    };
  },
  async verify(ctx, load) {
    const [count, history, accounts, branches, tellers] = psql(
      ctx,
      'SELECT (SELECT count(*) FROM pgbench_history), (SELECT coalesce(sum(delta),0) FROM pgbench_history), (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(tbalance) FROM pgbench_tellers)',
    ).split(' ').map(Number);
    const problems = [];
    if (count !== load.transactions) problems.push(`pgbench_history has ${count} rows, pgbench saw ${load.transactions} transactions committed`);
    if (!(history === accounts && accounts === branches && branches === tellers)) problems.push(`sums disagree: history ${history}, accounts ${accounts}, branches ${branches}, tellers ${tellers}`);
    const startedAt = psql(ctx, 'SELECT pg_postmaster_start_time()');
    if (startedAt !== ctx.startedAt) problems.push(`the postmaster restarted (${ctx.startedAt} -> ${startedAt})`);
    return { ok: problems.length === 0, detail: problems.join('; ') || `${count} committed transactions all in pgbench_history, balances agree; same postmaster` };
  },
};
