'use strict';
/**
 * Redis as Debian ships it (redis-server, stock /etc/redis/redis.conf), run like its systemd unit does
 * (`redis-server /etc/redis/redis.conf --supervised systemd --daemonize no`, User=redis, RuntimeDirectory=redis),
 * except that it listens on the LAN. Load: redis-benchmark INCR and LPUSH rounds (persistent connections), each
 * round a fixed number of requests, until told to stop. Every acknowledged write present: INCR of the one counter
 * key and LPUSH of the one list key add exactly one per request, so the counter and the list length must equal the
 * requests the finished rounds made; redis counts, not the test.
 */
const { lanTool, rounds, runOnLan, tcpOpen, waitUntil } = require('../app-kit');
const { mkdirSync, chownSync } = require('node:fs');
const { join } = require('node:path');
const { idsOf } = require('../bundle');
const { onHost } = require('../sandbox-access');

const PORT = 6379;
const ROUND_REQUESTS = 20_000;
const CLIENTS = 16;
const HISTOGRAM_MAX_MS = 3000;

/** redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms","p50...","p95...","p99...","max_latency_ms". */
function parseCsv(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''));
    if (cells.length >= 8 && cells[0] !== 'test' && Number.isFinite(Number(cells[1]))) {
      rows.push({ test: cells[0], rps: Number(cells[1]), maxMs: Number(cells[7]) });
    }
  }
  return rows;
}

function cli(ctx, ...args) {
  const r = runOnLan(ctx.sb, ctx.rootfs, ['redis-cli', '-h', ctx.address, '-p', String(PORT), ...args]);
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** The end of redis's log file (Debian's /var/log/redis/redis-server.log) in the container's rootfs on its host now. */
function redisLog(ctx) {
  const script = 'r=$(runc state "$1" 2>/dev/null | sed -n \'s/.*"rootfs": "\\(.*\\)".*/\\1/p\'); [ -n "$r" ] || r=/var/lib/lxc/$1/rootfs; tail -n 12 "$r/var/log/redis/redis-server.log"';
  const r = onHost(ctx.sb, ctx.host, ['sh', '-c', script, 'sh', ctx.name]);
  return `${r.stdout}${r.stderr}`.trim().replace(/\n/g, ' | ');
}

function info(ctx) {
  const text = cli(ctx, 'INFO', 'server');
  const field = (name) => new RegExp(`^${name}:(\\S+)`, 'm').exec(text)?.[1];
  return { pid: field('process_id'), uptime: Number(field('uptime_in_seconds')), runId: field('run_id') };
}

module.exports = {
  name: 'redis',
  kind: 'key-value store',
  packages: ['redis-server', 'redis-tools'],
  versionOf: 'redis-server',
  port: PORT,
  run: { args: ['/usr/bin/redis-server', '/etc/redis/redis.conf', '--supervised', 'no', '--daemonize', 'no', '--bind', '0.0.0.0', '--protected-mode', 'no'], user: 'redis' },
  deviations: 'the systemd unit\'s overrides (--daemonize no; --supervised no: there is no systemd), --bind 0.0.0.0 and --protected-mode no so that LAN clients get in',
  prepare(rootfs) {
    // systemd's RuntimeDirectory=redis (the pid file's directory).
    const dir = join(rootfs, 'run', 'redis');
    mkdirSync(dir, { recursive: true, mode: 0o2755 });
    const { uid, gid } = idsOf(rootfs, 'redis');
    chownSync(dir, uid, gid);
  },
  async ready(ctx) {
    await waitUntil('redis to answer PING', () => tcpOpen(ctx.sb, ctx.address, PORT) && /PONG/.test(cli(ctx, 'PING')), 60_000);
    ctx.before = info(ctx);
  },
  loadLabel: `redis-benchmark -c ${CLIENTS} -t incr,lpush, rounds of ${ROUND_REQUESTS}`,
  startLoad(ctx) {
    const load = rounds(() =>
      lanTool(ctx.sb, ctx.rootfs, ['redis-benchmark', '-h', ctx.address, '-p', String(PORT), '-c', String(CLIENTS), '-n', String(ROUND_REQUESTS), '-t', 'incr,lpush', '--csv']),
    );
    return {
      stop: async () => {
        // The round under way finishes: its writes are counted like the others.
        const runs = (await load.stop()).map((r) => ({ status: r.status, rows: parseCsv(r.stdout), stderr: r.stderr.trim() }));
        const failed = runs.filter((r) => r.status !== 0 || r.rows.length !== 2);
        const rows = runs.flatMap((r) => r.rows);
        return {
          ok: failed.length === 0 && runs.length > 0,
          errors: failed.map((r) => `redis-benchmark exited ${r.status}: ${r.stderr.slice(-300)}`),
          maxLatencyMs: Math.max(0, ...rows.map((r) => r.maxMs)),
          // redis-benchmark's latency histogram ends at 3 s (CONFIG_LATENCY_HISTOGRAM_MAX_VALUE): a longer wait reads 3000.
          maxLatencyCapped: rows.some((r) => r.maxMs >= HISTOGRAM_MAX_MS),
          opsPerSec: Math.round(rows.reduce((sum, r) => sum + r.rps, 0) / Math.max(1, runs.length)),
          requests: runs.filter((r) => r.status === 0).length * ROUND_REQUESTS,
          rounds: runs.length,
        };
      },
    };
  },
  async verify(ctx, load) {
    // redis-benchmark's keys without -r: "counter:__rand_int__" (INCR) and "mylist" (LPUSH), exactly one each.
    const counter = Number(cli(ctx, 'GET', 'counter:__rand_int__'));
    const length = Number(cli(ctx, 'LLEN', 'mylist'));
    const after = info(ctx);
    const problems = [];
    if (counter !== load.requests) problems.push(`counter ${counter}, expected ${load.requests} acknowledged INCRs`);
    if (length !== load.requests) problems.push(`list length ${length}, expected ${load.requests} acknowledged LPUSHes`);
    if (after.runId !== ctx.before.runId || after.uptime < ctx.before.uptime) problems.push(`redis restarted (run_id ${ctx.before.runId} -> ${after.runId})`);
    // A failed background save makes redis refuse writes (MISCONF): say which save and what redis logged about it.
    const persistence = cli(ctx, 'INFO', 'persistence');
    if (!/^rdb_last_bgsave_status:ok/m.test(persistence)) {
      const fields = persistence.split('\n').filter((l) => /^(rdb_|aof_enabled|current_fork)/.test(l)).map((l) => l.trim()).join(' ');
      problems.push(`background save failed: ${fields}; redis log: ${redisLog(ctx)}`);
    }
    return { ok: problems.length === 0, detail: problems.join('; ') || `${load.requests} INCR and ${load.requests} LPUSH acknowledged, all present; same redis process (run_id)` };
  },
};
