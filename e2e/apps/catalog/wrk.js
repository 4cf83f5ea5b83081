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

module.exports = { wrkResult, durationMs };
