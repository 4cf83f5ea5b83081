'use strict';
/**
 * nginx as Debian ships it (package nginx, stock /etc/nginx: `worker_processes auto`, the error log in
 * /var/log/nginx/error.log, which nginx makes its own stderr, an access log line per request, the default site on
 * port 80), run as the official image does (`nginx -g 'daemon off;'`: the master stays in the foreground, one worker
 * per CPU). Load: wrk over keep-alive connections for a fixed time. Data: the default page, byte for byte, before and
 * after; no socket error and no non-2xx answer in wrk's report; the same master process after the move.
 */
const { lanNode, lanTool, tcpOpen, waitUntil } = require('../app-kit');
const { wrkResult } = require('./wrk');

const PORT = 80;
const LOAD_SECONDS = 20;
const CONNECTIONS = 16;

function page(ctx) {
  return lanNode(ctx.sb, 'http-get.js', [`http://${ctx.address}:${PORT}/`]);
}

module.exports = {
  name: 'nginx',
  kind: 'web server, master + worker processes',
  packages: ['nginx', 'wrk'],
  versionOf: 'nginx',
  port: PORT,
  run: { args: ['/usr/sbin/nginx', '-g', 'daemon off;'] },
  deviations: 'none (`-g "daemon off;"` on the command line keeps the master in the foreground, as in the official image)',
  async ready(ctx) {
    await waitUntil('nginx to serve its default page', () => tcpOpen(ctx.sb, ctx.address, PORT) && page(ctx).status === 200, 60_000);
    ctx.before = page(ctx);
  },
  loadLabel: `wrk -t2 -c${CONNECTIONS} (keep-alive)`,
  startLoad(ctx) {
    const load = lanTool(ctx.sb, ctx.rootfs, ['wrk', '-t2', `-c${CONNECTIONS}`, `-d${LOAD_SECONDS}s`, '--timeout', '60s', `http://${ctx.address}:${PORT}/`]);
    return { stop: async () => wrkResult(await load.stop(), LOAD_SECONDS) };
  },
  async verify(ctx, load) {
    const after = page(ctx);
    const problems = [];
    if (after.status !== 200 || after.sha256 !== ctx.before.sha256) problems.push(`default page: ${after.status}, sha256 ${after.sha256} (before: ${ctx.before.sha256})`);
    if (load.requests === 0) problems.push('wrk completed no request');
    return { ok: problems.length === 0, detail: problems.join('; ') || `${load.requests} requests answered 2xx over ${CONNECTIONS} kept-alive connections, default page unchanged` };
  },
};
