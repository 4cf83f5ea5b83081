'use strict';
/**
 * The trials the Docker and Podman rows share (bench/docker-bench.js, bench/podman-bench.js): a container of the
 * workload fixture (--network none) on h1 moves to h2 with `ferry migrate` and with the runtime's own path (a script
 * of its CLI: bench/docker-own-migrate.sh, bench/podman-own-migrate.sh), the two taking turns, run 0 a warm-up; the
 * workload's memory is checked on h2 after each move. What differs between the runtimes is a descriptor:
 *
 *   { label, cli, image, ferryMethod, ownMethod, ownScript, ownFailedCode, namePrefix, countingTries,
 *     ferryRef(name), removeArgv(name), logRow(row) }
 *
 * Also the summary and formatting helpers both sections (and bench/migration-bench.js) render with.
 */
const TRIAL_TIMEOUT_MS = 300_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** ctx: { sizes, runs, dirtyPercent, sshConfig, hostsFile, onHost(host, argv, {input, timeoutMs}), log, interrupted }. */
async function runContainerTrials(ctx, rt) {
  const rows = [];
  let seq = 0;
  const methods = [rt.ferryMethod, rt.ownMethod];
  for (const sizeMib of ctx.sizes) {
    ctx.log(`== ${rt.label}, ${sizeMib} MiB, unshaped`);
    for (let r = 0; r <= ctx.runs; r++) {
      // Run 0 is a warm-up (first container of each host, page cache); methods take turns, the order rotating.
      const order = r % 2 ? methods : [...methods].reverse();
      for (const method of order) {
        if (ctx.interrupted()) return { rows, summary: summarize(rows, ctx, methods) };
        const row = await trial(ctx, rt, { method, sizeMib: r === 0 ? 64 : sizeMib, run: r, warmup: r === 0, name: `${rt.namePrefix}${process.pid % 10000}x${++seq}` });
        rows.push(row);
        ctx.log(rt.logRow(row));
      }
    }
  }
  return { rows, summary: summarize(rows, ctx, methods) };
}

async function trial(ctx, rt, { method, sizeMib, run, warmup, name }) {
  const pages = (sizeMib * 1024 * 1024) / 4096;
  const dirtyPagesPerSec = Math.round((pages * ctx.dirtyPercent) / 100);
  const row = { method, sizeMib, link: 'unshaped', run, warmup, container: name, dirtyPagesPerSec, ok: false };
  try {
    const started = await ctx.onHost('h1', [rt.cli, 'run', '-d', '--name', name, '--network', 'none', rt.image,
      '/usr/bin/workload', '--state', '/tmp/state', '--mem-mib', String(sizeMib), '--dirty-pages-per-sec', String(dirtyPagesPerSec)]);
    if (started.status !== 0) throw new Error(`${rt.cli.split('/').pop()} run failed: ${started.stderr}`);
    if (!(await counting(ctx, rt, 'h1', name))) throw new Error('the workload did not start counting');
    await sleep(1000); // the dirty rate settles, like the runc trials
    const wallStart = performance.now();
    const ferry = method === rt.ferryMethod;
    const r = ferry
      ? await ctx.onHost('h1', ['ferry', 'migrate', rt.ferryRef(name), '--to', 'h2', '--hosts-file', ctx.hostsFile, '--json'], { timeoutMs: TRIAL_TIMEOUT_MS })
      : await ctx.onHost('h1', ['bash', rt.ownScript, name, '--to', 'h2', '--ssh-config', ctx.sshConfig], { timeoutMs: TRIAL_TIMEOUT_MS });
    row.wallMs = Math.round(performance.now() - wallStart);
    const out = ferry ? event(r.stdout, 'report') : lastJson(r.stdout);
    if (r.status !== 0 || !out || out.ok === false) {
      const error = ferry ? event(r.stdout, 'error') ?? event(r.stderr, 'error') : out;
      row.error = { code: error?.code ?? (ferry ? `EXIT_${r.status}` : rt.ownFailedCode), message: error?.message ?? error?.error ?? r.stderr.trim().slice(-500) };
      return row;
    }
    for (const k of ['downtimeMs', 'totalMs', 'bytesSent', 'bytesSentFrozen', 'phasesMs', 'strategy']) if (out[k] !== undefined) row[k] = out[k];
    if (!(await counting(ctx, rt, 'h2', name))) throw new Error('the workload does not count on h2');
    row.memory = await verify(ctx, rt, 'h2', name);
    row.ok = row.memory === 'ok';
    return row;
  } catch (err) {
    row.error = row.error ?? { code: 'BENCH', message: err.message };
    return row;
  } finally {
    for (const host of ['h1', 'h2']) await ctx.onHost(host, [rt.cli, ...rt.removeArgv(name)]);
    await ctx.onHost('h2', ['sh', '-c', 'rm -rf /var/lib/ferry/migrations/*']);
  }
}

async function pidOf(ctx, rt, host, name) {
  const r = await ctx.onHost(host, [rt.cli, 'inspect', '-f', '{{.State.Pid}}', name]);
  return r.status === 0 ? Number(r.stdout.trim()) : 0;
}

async function counting(ctx, rt, host, name) {
  for (let i = 0; i < rt.countingTries; i++) {
    const pid = await pidOf(ctx, rt, host, name);
    if (pid > 0) {
      const state = await ctx.onHost(host, ['cat', `/proc/${pid}/root/tmp/state`]);
      if (Number(/counter=(\d+)/.exec(state.stdout)?.[1] ?? 0) >= 2) return true;
    }
    await sleep(200);
  }
  return false;
}

async function verify(ctx, rt, host, name) {
  const pid = await pidOf(ctx, rt, host, name);
  const r = await ctx.onHost(host, ['sh', '-c', 'rm -f "$1"; kill -USR1 "$2"; for i in $(seq 300); do [ -s "$1" ] && exec cat "$1"; sleep 0.1; done; echo timeout', 'sh', `/proc/${pid}/root/tmp/state.verify`, String(pid)]);
  return /verify=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.trim();
}

function event(text, name) {
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line);
      if (o.event === name) return o[name];
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

function lastJson(text) {
  const lines = text.split('\n').filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]);
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/** The finite numbers among `values`, ascending. */
const sortedNumbers = (values) => values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);

function median(values) {
  const v = sortedNumbers(values);
  if (!v.length) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..1): with fewer than 20 values, p95 is the largest. */
function percentile(values, p) {
  const v = sortedNumbers(values);
  if (!v.length) return undefined;
  return v[Math.min(v.length - 1, Math.ceil(p * v.length) - 1)];
}

/** Medians per size and method; ratios against the runtime's own path, run by run. */
function summarize(rows, ctx, [ferryMethod, ownMethod]) {
  const out = [];
  for (const sizeMib of ctx.sizes) {
    for (const method of [ferryMethod, ownMethod]) {
      const rs = rows.filter((r) => !r.warmup && r.sizeMib === sizeMib && r.method === method);
      if (!rs.length) continue;
      const good = rs.filter((r) => !r.error);
      const own = rows.filter((r) => !r.warmup && r.sizeMib === sizeMib && r.method === ownMethod && !r.error);
      const ratio = (key) => ratioByRun(good, own, key);
      out.push({
        sizeMib,
        method,
        ...trialCounts(rs),
        downtimeMs: median(good.map((r) => r.downtimeMs)),
        totalMs: median(good.map((r) => r.totalMs)),
        bytesSent: median(good.map((r) => r.bytesSent)),
        verified: good.filter((r) => r.memory === 'ok').length,
        downtimeRatio: method === ownMethod ? undefined : ratio('downtimeMs'),
        totalRatio: method === ownMethod ? undefined : ratio('totalMs'),
        phasesMs: medianPhases(good),
      });
    }
  }
  return out;
}

/** How many trials ran, how many succeeded, and the errors of the others. */
function trialCounts(rs) {
  return { runs: rs.length, succeeded: rs.filter((r) => !r.error).length, errors: rs.filter((r) => r.error).map((r) => `${r.error.code}: ${r.error.message}`) };
}

/** Median over runs of `key` in `rows` divided by `key` in the baseline row of the same run index. */
function ratioByRun(rows, baseline, key) {
  return median(rows.map((r) => {
    const b = baseline.find((x) => x.run === r.run && !x.error);
    return b && b[key] > 0 ? r[key] / b[key] : undefined;
  }));
}

/** Median milliseconds of each phase any of `rows` went through (0 where a row skipped it). */
function medianPhases(rows) {
  const phases = new Set(rows.flatMap((r) => Object.keys(r.phasesMs ?? {})));
  return Object.fromEntries([...phases].map((p) => [p, median(rows.map((r) => r.phasesMs?.[p] ?? 0))]));
}

const fmtMs = (ms) => (ms === undefined ? '–' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)}`);
const fmtRatio = (x) => (x === undefined ? '–' : `${x.toFixed(2)}×`);
const sizeLabel = (mib) => (mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`);

module.exports = { runContainerTrials, summarize, ratioByRun, medianPhases, trialCounts, event, lastJson, median, percentile, fmtMs, fmtRatio, sizeLabel };
