'use strict';
/** wrk's report (the HTTP servers' load tool) as a load result: requests, rate, the longest request, errors. */

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1.50s" -> 1500 */
function durationMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

/** @param {{ status: number|null, stdout: string, stderr: string }} run @param {number} seconds */
function wrkResult(run, seconds) {
  const out = run.stdout;
  const max = /^\s*Latency\s+\S+\s+\S+\s+(\S+)/m.exec(out)?.[1];
  const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = [];
  if (run.status !== 0 && run.signal !== 'SIGINT') errors.push(`wrk exited ${run.status ?? run.signal}: ${run.stderr.trim().slice(-300)}`);
  if (socketErrors) errors.push(`socket errors: ${socketErrors}`);
  if (non2xx > 0) errors.push(`${non2xx} non-2xx answers`);
  if (!max) errors.push(`no report from wrk: ${out.slice(-300)} ${run.stderr.slice(-300)}`);
  return {
    ok: errors.length === 0,
    errors,
    maxLatencyMs: max ? durationMs(max) : NaN,
    opsPerSec: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? requests / seconds)),
    requests,
  };
}


/**
 * The load and checks of a web server on PORT: wrk over CONNECTIONS kept-alive connections until stopped (SIGINT:
 * wrk prints its report then), and the default page, byte for byte, before and after the move.
 */
function webServerChecks(port, connections) {
  const { lanNode, lanTool, tcpOpen, waitUntil } = require('../app-kit');
  const upperBoundSeconds = 600;
  const page = (ctx) => lanNode(ctx.sb, 'http-get.js', [`http://${ctx.address}:${port}/`]);
  return {
    loadLabel: `wrk -t2 -c${connections} (keep-alive)`,
    async ready(ctx, timeoutMs = 60_000) {
      await waitUntil('the server to serve its default page', () => tcpOpen(ctx.sb, ctx.address, port) && page(ctx).status === 200, timeoutMs, 500);
      ctx.before = page(ctx);
    },
    startLoad(ctx) {
      const load = lanTool(ctx.sb, ctx.rootfs, ['wrk', '-t2', `-c${connections}`, `-d${upperBoundSeconds}s`, '--timeout', '60s', `http://${ctx.address}:${port}/`]);
      return { stop: async () => wrkResult(await load.stop(), upperBoundSeconds) };
    },
    async verify(ctx, load) {
      const after = page(ctx);
      const problems = [];
      if (after.status !== 200 || after.sha256 !== ctx.before.sha256) problems.push(`default page: ${after.status}, sha256 ${after.sha256} (before: ${ctx.before.sha256})`);
      if (load.requests === 0) problems.push('wrk completed no request');
      return { ok: problems.length === 0, detail: problems.join('; ') || `${load.requests} requests answered 2xx over ${connections} kept-alive connections, default page unchanged` };
    },
  };
}

module.exports = { wrkResult, durationMs, webServerChecks };
