'use strict';
/**
 * nginx as Debian ships it (package nginx, stock /etc/nginx: `worker_processes auto`, the error log in
 * /var/log/nginx/error.log, which nginx makes its own stderr, an access log line per request, the default site on
 * port 80), run as the official image does (`nginx -g 'daemon off;'`: the master stays in the foreground, one worker
 * per CPU). Load: wrk over keep-alive connections until stopped. Data: the default page, byte for byte, before and
 * after; no socket error and no non-2xx answer in wrk's report.
 */
const { webServerChecks } = require('./wrk');

module.exports = {
  name: 'nginx',
  kind: 'web server, master + worker processes',
  packages: ['nginx', 'wrk'],
  versionOf: 'nginx',
  port: 80,
  run: { args: ['/usr/sbin/nginx', '-g', 'daemon off;'] },
  deviations: 'none (`-g "daemon off;"` on the command line keeps the master in the foreground, as in the official image)',
  ...webServerChecks(80, 16),
};
