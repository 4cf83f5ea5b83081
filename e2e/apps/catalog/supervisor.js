'use strict';
/**
 * A multi-process service under a supervisor: Debian's supervisor (supervisord as its systemd unit runs it, `-n -c
 * /etc/supervisor/supervisord.conf`, stock configuration, its control socket and logs) supervising Debian's
 * beanstalkd work queue with its persistent binlog, as the beanstalkd package's defaults suggest (`-b
 * /var/lib/beanstalkd`), as user beanstalkd. Load: a producer and a consumer on two connections held throughout
 * (clients/beanstalk-ledger.js; beanstalkd ships no client). Data: every job beanstalkd acknowledged delivered
 * exactly once; supervisorctl on the destination shows beanstalkd RUNNING under the same pid it had before.
 */
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { lanNodeLoad, tcpOpen, waitUntil } = require('../app-kit');
const { onHost } = require('../sandbox-access');

const PORT = 11300;
const PROGRAM = `; ferry e2e/apps: beanstalkd under supervisor, with Debian's /etc/default/beanstalkd values except the address
[program:beanstalkd]
command=/usr/bin/beanstalkd -l 0.0.0.0 -p ${PORT} -b /var/lib/beanstalkd
user=beanstalkd
autorestart=true
`;

/** `supervisorctl status beanstalkd` inside the container, wherever it runs now: "RUNNING pid N". */
function status(ctx) {
  const r = onHost(ctx.sb, ctx.host, ['runc', 'exec', ctx.name, 'supervisorctl', 'status', 'beanstalkd']);
  const out = `${r.stdout}${r.stderr}`.trim();
  const m = /RUNNING\s+pid (\d+)/.exec(out);
  if (!m) throw new Error(`supervisorctl: ${out}; ${socketView(ctx)}`);
  return { pid: Number(m[1]), line: out };
}

/** What the container sees of supervisord's control socket: its file under /run and the kernel's unix sockets. */
function socketView(ctx) {
  const r = onHost(ctx.sb, ctx.host, ['runc', 'exec', ctx.name, 'sh', '-c', 'ls -la /run/ | head -20; grep -i supervisor /proc/net/unix']);
  return `in the container: ${`${r.stdout}${r.stderr}`.trim().replace(/\n/g, ' | ')}`;
}

module.exports = {
  name: 'supervisor',
  kind: 'supervisor + work queue (beanstalkd), multi-process',
  packages: ['supervisor', 'beanstalkd'],
  versionOf: 'supervisor',
  port: PORT,
  run: { args: ['/usr/bin/supervisord', '-n', '-c', '/etc/supervisor/supervisord.conf'] },
  // beanstalkd holds a POSIX lock on /var/lib/beanstalkd/lock: with --shared-storage the destination's restore would
  // wait for the lock the frozen source holds, and ferry refuses that move (shared-storage-locks.ts). Copied, it moves.
  copyRootfs: true,
  deviations: 'a conf.d program entry for beanstalkd (Debian\'s defaults with -b, listening on the LAN)',
  prepare(rootfs) {
    writeFileSync(join(rootfs, 'etc', 'supervisor', 'conf.d', 'beanstalkd.conf'), PROGRAM);
  },
  async ready(ctx) {
    await waitUntil('beanstalkd under supervisord to accept connections', () => tcpOpen(ctx.sb, ctx.address, PORT), 60_000);
    ctx.before = await waitUntil('supervisorctl to show beanstalkd RUNNING', () => status(ctx), 30_000, 500);
  },
  loadLabel: 'put + reserve/delete, 100 jobs/s on 2 held connections',
  startLoad(ctx) {
    const load = lanNodeLoad(ctx.sb, 'beanstalk-ledger.js', [ctx.address, String(PORT), '10']);
    return {
      stop: async () => {
        const { result, stderr } = await load.stop();
        if (!result) return { ok: false, errors: [`no result from the ledger client: ${stderr.slice(-300)}`], maxLatencyMs: NaN, opsPerSec: 0, requests: 0 };
        const errors = [];
        if (result.stuck) errors.push(`the drain never ended: ${JSON.stringify(result.stuck)} (${result.acked} acknowledged, ${result.delivered} delivered)`);
        if (result.closed > 0) errors.push(`${result.closed} connection(s) closed (${result.closedConnections.join(', ')}${result.errors.length ? `: ${result.errors.join(', ')}` : ''})`);
        return { ok: errors.length === 0, errors, maxLatencyMs: result.maxLatencyMs, opsPerSec: 100, requests: result.acked, ledger: result };
      },
    };
  },
  async verify(ctx, load) {
    const l = load.ledger ?? {};
    const problems = [];
    if (!(l.missing === 0 && l.duplicates === 0 && l.acked > 0)) problems.push(`jobs: ${JSON.stringify(l)}`);
    let after;
    try {
      after = status(ctx);
      if (after.pid !== ctx.before.pid) problems.push(`beanstalkd restarted: pid ${ctx.before.pid} -> ${after.pid}`);
    } catch (err) {
      // supervisord binds its control socket under a temporary name and unlinks that name (unix-socket-names.ts in
      // ferry): CRIU restores the socket without a file. ferry warns about it; the row says whether it did.
      const warned = (ctx.report?.warnings ?? []).find((w) => w.includes('/var/run/supervisor.sock.'));
      problems.push(`${err.message}${warned ? ` (ferry warned: ${warned})` : ' (ferry did not warn)'}`);
    }
    const jobs = problems.length === 0 || !problems[0].startsWith('jobs:') ? `${l.acked} acknowledged jobs delivered exactly once` : undefined;
    return { ok: problems.length === 0, detail: problems.length === 0 ? `${jobs}; supervisorctl: beanstalkd RUNNING, same pid ${after.pid}` : [...problems, ...(jobs ? [jobs] : [])].join('; ') };
  },
};
