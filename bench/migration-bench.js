#!/usr/bin/env node
'use strict';
/**
 * Migration benchmark: ferry's strategies against the naive baseline an operator would script (runc checkpoint,
 * tar | ssh, runc restore: bench/naive-migrate.sh), side by side in one run, between the two sandbox hosts
 * (scripts/sandbox-hosts.sh, own instance "ferrybench" in /run/ferry-sandbox-ferrybench), with the link unshaped and shaped
 * (tc tbf). Root only. See bench/README.md.
 *
 *   node bench/migration-bench.js [--sizes 256,1024] [--links unshaped,1gbit] [--runs 3]
 *       [--strategies stop-and-copy,pre-copy,hash-pre-copy,post-copy] [--no-naive] [--dirty-percent 2] [--quick]
 *       [--runtimes runc,lxc] [--out docs/benchmarks.md] [--json-out bench/results/last-run.json]
 *
 * Each trial: a fresh runc container on h1 (the workload fixture: SIZE MiB that it keeps rewriting at
 * --dirty-percent of its pages per second, a TCP echo service on :8080), an outside client on the LAN
 * (bench/downtime-probe.js, one ping every 10 ms on one connection), the move to h2, one more second of pings, the
 * workload's memory check on h2, then everything removed. Methods take turns within each run (the order rotates
 * from run to run) because the machine is shared and noisy; the table shows medians over --runs.
 * A ferry strategy that `ferry migrate` refuses with ERR_PRECHECK_FEATURE_MISSING in the warm-up is skipped, with
 * the reason in the results.
 * LXC rows (methods "lxc:STRATEGY" and "lxc:naive"): the same trial with an LXC container (e2e/bin/lxc-ctl.js, a
 * veth on each host's lxcbr0, which the sandbox plugs into the LAN), ferry against LXC's own path
 * (bench/naive-lxc-migrate.sh: lxc-checkpoint -s, tar | ssh, lxc-checkpoint -r), in the same runs.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');
const SANDBOX_SCRIPT = path.join(ROOT, 'scripts', 'sandbox-hosts.sh');
const CONTAINER_CTL = path.join(ROOT, 'e2e', 'bin', 'container-ctl.js');
const PROBE = path.join(__dirname, 'downtime-probe.js');
const NAIVE = path.join(__dirname, 'naive-migrate.sh');
const LXC_CTL = path.join(ROOT, 'e2e', 'bin', 'lxc-ctl.js');
const NAIVE_LXC = path.join(__dirname, 'naive-lxc-migrate.sh');
// FERRY_BENCH_NAME lets two checkouts benchmark side by side (1-10 lowercase letters/digits).
const SANDBOX_NAME = process.env.FERRY_BENCH_NAME || 'ferrybench';
const SANDBOX_DIR = `/run/ferry-sandbox-${SANDBOX_NAME}`;
const HOSTS_FILE = `${SANDBOX_DIR}/hosts.yaml`;
const SSH_CONFIG = `${SANDBOX_DIR}/ssh_config`;
const UPLINK = `${SANDBOX_DIR}/lan.netns:br-lan`;
const LAN_NETNS = `/run/netns/${SANDBOX_NAME}-lan`;
const PAGE_SIZE = 4096;
const PORT = 8080;
const PING_INTERVAL_MS = 10;
/** Pings before the move (the dirty rate settles, the client's connection is warm) and after it. */
const SETTLE_BEFORE_MS = 1000;
const SETTLE_AFTER_MS = 500;
/** After the move: answers count as flowing again when no report in STEADY_MS showed a silence of STEADY_SILENCE_MS. */
const STEADY_MS = 1000;
const STEADY_SILENCE_MS = 200;
const STEADY_MAX_MS = 60_000;
const TRIAL_TIMEOUT_MS = 300_000;
const WARMUP_MIB = 64;
/** hash-pre-copy with --lazy-restore: the destination restores without writing memory while frozen. */
const LAZY_RESTORE = 'hash-pre-copy-lazy';
/** The same, its fill done by CRIU's lazy-pages daemon instead of ferry's own handler (the destination agent's FERRY_LAZY_PAGES=criu). */
const LAZY_RESTORE_CRIU = 'hash-pre-copy-lazy-criu';
/** What an operator gets without choosing: `--strategy auto`. */
const AUTO = 'auto';
const ALL_STRATEGIES = ['stop-and-copy', 'pre-copy', 'hash-pre-copy', LAZY_RESTORE, LAZY_RESTORE_CRIU, AUTO, 'post-copy'];
/** `ferry migrate`'s flags for a bench strategy. */
const strategyFlags = (s) =>
  s === LAZY_RESTORE
    ? ['--strategy', 'hash-pre-copy', '--lazy-restore']
    : s === LAZY_RESTORE_CRIU
      ? ['--strategy', 'hash-pre-copy', '--lazy-restore', '--agent-command', 'env FERRY_LAZY_PAGES=criu ferry agent']
      : ['--strategy', s];
const NAIVE_METHOD = 'naive';
/** LXC methods are the runc ones with this prefix; LXC_NAIVE is LXC's own checkpoint-copy-restore path. */
const LXC = 'lxc:';
const LXC_NAIVE = `${LXC}naive`;
const LXC_STRATEGIES = ['stop-and-copy', 'post-copy'];
/**
 * --thp: a method may carry the kernel's transparent huge page mode its trial runs under ("ferry hash-pre-copy@thp=always"):
 * set for the whole trial (both sandbox hosts share the kernel), the machine's own mode put back afterwards.
 */
const THP_FILE = '/sys/kernel/mm/transparent_hugepage/enabled';
const THP_SEP = '@thp=';
const baseMethod = (m) => m.split(THP_SEP)[0];
const thpOf = (m) => m.split(THP_SEP)[1];
const isLxc = (m) => m.startsWith(LXC);
const isNaive = (m) => baseMethod(m) === NAIVE_METHOD || baseMethod(m) === LXC_NAIVE;
/** The baseline a method is compared with: runc's naive script, or LXC's own path for LXC rows (under the same THP mode). */
const naiveFor = (m) => (isLxc(m) ? LXC_NAIVE : NAIVE_METHOD) + (thpOf(m) ? `${THP_SEP}${thpOf(m)}` : '');

const env = { ...process.env, FERRY_SANDBOX_NAME: SANDBOX_NAME, FERRY_SANDBOX_DIR: SANDBOX_DIR };

// ------------------------------------------------------------------------------------------------ options

function usage() {
  return `usage: node bench/migration-bench.js [options]   (root; npm run bench:migrate)
  --sizes LIST          container memory in MiB (default 256,1024)
  --links LIST          unshaped and/or tc rates, e.g. 1gbit, 200mbit (default unshaped,1gbit)
  --runs N              runs per configuration, medians reported (default 3)
  --strategies LIST     ferry strategies to try (default ${ALL_STRATEGIES.join(',')}; unavailable ones are skipped)
  --no-naive            leave out the naive runc checkpoint | tar | ssh | runc restore baseline (and LXC's own path)
  --runtimes LIST       runc and/or lxc (default runc,lxc; lxc: ${LXC_STRATEGIES.join(', ')} and lxc-checkpoint -s | ssh | -r)
  --no-naive            leave out the naive runc checkpoint | tar | ssh | runc restore baseline
  --thp LIST            each method once per transparent huge page mode (always, madvise, never), set for its trials
  --no-docker           leave out the Docker rows (ferry vs docker checkpoint/start --checkpoint; bench/docker-bench.js)
  --no-podman           leave out the Podman rows (ferry vs podman checkpoint --export/restore --import; bench/podman-bench.js)
  --dirty-percent P     pages the workload rewrites per second, % of its memory (default 2)
  --quick               1 run, 256 MiB, unshaped only (output to bench/results/quick.md unless --out)
  --out FILE            markdown results (default docs/benchmarks.md)
  --json-out FILE       raw results (default bench/results/last-run.json, or quick.json)
  --from-json FILE      no measuring: render the markdown again from the raw results of an earlier run`;
}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string' },
      links: { type: 'string' },
      runs: { type: 'string' },
      strategies: { type: 'string' },
      'no-naive': { type: 'boolean', default: false },
      'no-docker': { type: 'boolean', default: false },
      'no-podman': { type: 'boolean', default: false },
      'dirty-percent': { type: 'string', default: '2' },
      runtimes: { type: 'string', default: 'runc,lxc' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      'json-out': { type: 'string' },
      'from-json': { type: 'string' },
      thp: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);
  const quick = values.quick;
  const sizes = list(values.sizes ?? (quick ? '256' : '256,1024')).map(Number);
  const links = list(values.links ?? (quick ? 'unshaped' : 'unshaped,1gbit'));
  const runs = Number(values.runs ?? (quick ? '1' : '3'));
  const strategies = list(values.strategies ?? ALL_STRATEGIES.join(','));
  const dirtyPercent = Number(values['dirty-percent']);
  const bad = (message) => {
    throw Object.assign(new Error(`${message}\n${usage()}`), { exitCode: 2 });
  };
  if (!sizes.length || sizes.some((s) => !Number.isInteger(s) || s < 1)) bad('--sizes must be whole MiB, e.g. 256,1024');
  if (!links.length || links.some((l) => l !== 'unshaped' && !/^\d+(\.\d+)?[kmg]?(bit|bps)$/.test(l))) bad('--links: unshaped or a tc rate like 1gbit');
  if (!Number.isInteger(runs) || runs < 1) bad('--runs must be >= 1');
  for (const s of strategies) if (!ALL_STRATEGIES.includes(s)) bad(`unknown strategy ${s} (${ALL_STRATEGIES.join(', ')})`);
  if (!(dirtyPercent >= 0 && dirtyPercent <= 100)) bad('--dirty-percent must be between 0 and 100');
  const runtimes = list(values.runtimes);
  if (!runtimes.length || runtimes.some((r) => r !== 'runc' && r !== 'lxc')) bad('--runtimes: runc and/or lxc');
  const thp = values.thp === undefined ? [] : list(values.thp);
  if (thp.some((t) => !['always', 'madvise', 'never'].includes(t))) bad('--thp: always, madvise and/or never');
  return {
    thp,
    sizes,
    links,
    runs,
    strategies,
    naive: !values['no-naive'],
    runtimes,
    docker: !values['no-docker'],
    podman: !values['no-podman'],
    dirtyPercent,
    quick,
    out: path.resolve(values.out ?? (quick ? path.join(__dirname, 'results', 'quick.md') : path.join(ROOT, 'docs', 'benchmarks.md'))),
    jsonOut: path.resolve(values['json-out'] ?? path.join(__dirname, 'results', quick ? 'quick.json' : 'last-run.json')),
    fromJson: values['from-json'] && path.resolve(values['from-json']),
    outGiven: values.out !== undefined,
    argv,
  };
}

// ------------------------------------------------------------------------------------------------ processes

/** Children to kill on Ctrl-C (probes, the command running in a host). */
const children = new Set();
let interrupted = false;

/** Runs FILE ARGS; resolves { status, stdout, stderr, ms } (never rejects); killed after timeoutMs. */
function run(file, args, { timeoutMs = 120_000, input } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(file, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => {
      stderr += `\n[bench: killed after ${timeoutMs} ms]`;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
    child.on('error', (err) => (stderr += String(err)));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ status: status ?? (signal ? 128 : 1), stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const sandbox = (...args) => run('bash', [SANDBOX_SCRIPT, ...args]);
const { event: parseFerry, median, percentile, medianPhases, ratioByRun, trialCounts, fmtMs, fmtRatio, sizeLabel } = require('./container-trials');
const { runDockerBench, renderDockerSection } = require('./docker-bench');
const { runPodmanBench, renderPodmanSection } = require('./podman-bench');
const onHost = (host, argv, options) => run('bash', [SANDBOX_SCRIPT, 'exec', host, '--', 'env', `FERRY_NETNS_UPLINK=${UPLINK}`, ...argv], options);

/** onHost for the Docker rows: the host's dockerd through DOCKER_HOST, stdin from a Buffer, stdout kept as bytes. */
function dockerOnHost(host, argv, { timeoutMs = 120_000, input, binary = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn('bash', [SANDBOX_SCRIPT, 'exec', host, '--', 'env', 'DOCKER_HOST=unix:///run/ferry/docker.sock', ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const out = [];
    let stderr = '';
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const buffer = Buffer.concat(out);
      resolve({ status: status ?? (signal ? 128 : 1), stdout: binary ? '' : buffer.toString('utf8'), stdoutBuffer: buffer, stderr });
    });
  });
}

function lastJson(text) {
  const lines = text.split('\n').filter((l) => l.trim().startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]);
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/** container-ctl.js on HOST, or another control script given as `--ctl FILE` first (lxc-ctl.js). */
async function ctl(host, ...args) {
  const script = args[0] === '--ctl' ? args[1] : CONTAINER_CTL;
  if (args[0] === '--ctl') args = args.slice(2);
  const r = await onHost(host, ['node', script, ...args]);
  if (r.status !== 0) throw new Error(`container-ctl ${args.join(' ')} on ${host} failed: ${r.stderr.trim()}`);
  return lastJson(r.stdout) ?? {};
}

async function mustSandbox(...args) {
  const r = await sandbox(...args);
  if (r.status !== 0) throw new Error(`sandbox-hosts.sh ${args.join(' ')} failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------ one trial

/** Containers that may exist somewhere: name -> { bundle }. */
const live = new Map();
let trialSeq = 0;

async function removeContainer(name) {
  const entry = live.get(name);
  for (const host of ['h2', 'h1']) {
    await onHost(host, ['node', entry?.lxc ? LXC_CTL : CONTAINER_CTL, 'remove', name], { timeoutMs: 60_000 });
  }
  await onHost('h2', ['rm', '-rf', `/var/lib/ferry/bench-naive/${name}`], { timeoutMs: 30_000 });
  await onHost('h1', ['rm', '-rf', `/var/lib/ferry/bench-naive/${name}`], { timeoutMs: 30_000 });
  if (entry?.bundle && /^\/tmp\/ferry-bundle-[A-Za-z0-9-]+$/.test(entry.bundle)) fs.rmSync(entry.bundle, { recursive: true, force: true });
  live.delete(name);
}

function startProbe(address) {
  const child = spawn('nsenter', [`--net=${LAN_NETNS}`, process.execPath, PROBE, address, String(PORT), String(PING_INTERVAL_MS)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  let pending = '';
  /** The probe's "since MS" reports, newest last. */
  const since = [];
  let reports = 0;
  child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
  const connected = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the client did not connect to ${address}:${PORT} within 10 s: ${stderr}`)), 10_000);
    child.stderr.setEncoding('utf8').on('data', (c) => {
      pending += c;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const m = /^since (\d+)$/.exec(line);
        if (m) {
          since.push(Number(m[1]));
          reports++;
          if (since.length > 100) since.shift();
          continue;
        }
        stderr += `${line}\n`;
        if (line === 'connected') {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`the client exited: ${stderr}`));
    });
  });
  connected.catch(() => undefined);
  const closed = new Promise((resolve) => child.on('close', resolve));
  return {
    connected,
    /**
     * Resolves true once answers have flowed for STEADY_MS (every report of the last STEADY_MS under
     * STEADY_SILENCE_MS), false after maxMs. After a long freeze TCP's retransmission back-off can keep a connection
     * silent well after the container runs again: that silence belongs to the downtime.
     */
    async steady(maxMs) {
      const deadline = Date.now() + maxMs;
      const need = STEADY_MS / 100;
      for (;;) {
        const before = reports;
        await sleep(100);
        if (reports > before && since.length >= need && since.slice(-need).every((ms) => ms < STEADY_SILENCE_MS)) return true;
        if (Date.now() > deadline) return false;
      }
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await closed;
      clearTimeout(timer);
      children.delete(child);
      return lastJson(stdout);
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/**
 * One migration of a fresh container: returns a result row (never throws for a failed migration; the failure is
 * recorded in the row).
 */
async function trial({ method, sizeMib, link, run: runIndex, dirtyPercent, warmup = false }) {
  trialSeq++;
  const name = `fb${process.pid % 10000}x${trialSeq}`;
  const address = `10.77.0.${10 + (trialSeq % 240)}`;
  const pages = (sizeMib * 1024 * 1024) / PAGE_SIZE;
  const dirtyPagesPerSec = Math.round((pages * dirtyPercent) / 100);
  const row = { method, sizeMib, link, run: runIndex, warmup, container: name, dirtyPagesPerSec, ok: false };
  const thpBefore = thpOf(method) && setThp(thpOf(method));
  const lxc = isLxc(method);
  const control = lxc ? LXC_CTL : CONTAINER_CTL;
  let probe;
  try {
    live.set(name, { lxc });
    const started = await ctl('h1', ...(lxc ? ['--ctl', LXC_CTL] : []), 'start', name, '--mem-mib', String(sizeMib), '--dirty-pages-per-sec', String(dirtyPagesPerSec), '--address', `${address}/24`, ...(lxc ? ['--port', String(PORT)] : []));
    live.set(name, { bundle: started.bundle, lxc });
    probe = startProbe(address);
    await probe.connected;
    await sleep(SETTLE_BEFORE_MS);

    const wallStart = performance.now();
    let r;
    if (baseMethod(method) === NAIVE_METHOD) {
      r = await onHost('h1', ['bash', NAIVE, name, '--to', 'h2', '--ssh-config', SSH_CONFIG, '--uplink', UPLINK], { timeoutMs: TRIAL_TIMEOUT_MS });
    } else if (baseMethod(method) === LXC_NAIVE) {
      r = await onHost('h1', ['bash', NAIVE_LXC, name, '--to', 'h2', '--ssh-config', SSH_CONFIG], { timeoutMs: TRIAL_TIMEOUT_MS });
    } else {
      const strategy = lxc ? baseMethod(method).slice(LXC.length) : baseMethod(method);
      r = await onHost('h1', ['ferry', 'migrate', lxc ? `lxc:${name}` : name, '--to', 'h2', '--hosts-file', HOSTS_FILE, ...strategyFlags(strategy), '--json'], {
        timeoutMs: TRIAL_TIMEOUT_MS,
      });
    }
    row.wallMs = Math.round(performance.now() - wallStart);
    // Fresh reports only: wait until the client is answered steadily again (or give up), then a little more.
    const settleStart = performance.now();
    row.clientSteady = await probe.steady(STEADY_MAX_MS);
    row.settleMs = Math.round(performance.now() - settleStart);
    await sleep(SETTLE_AFTER_MS);
    const client = await probe.stop();
    probe = undefined;
    row.client = client;

    if (isNaive(method)) {
      const out = lastJson(r.stdout);
      if (r.status !== 0 || !out?.ok) {
        row.error = { code: 'NAIVE_FAILED', message: out?.error ? `${out.step}: ${out.error}` : (r.stderr.trim() || `exit ${r.status}`).slice(-500) };
        return row;
      }
      Object.assign(row, pick(out, ['downtimeMs', 'totalMs', 'bytesSent', 'bytesSentFrozen', 'phasesMs', 'phaseBytes']));
    } else {
      const report = parseFerry(r.stdout, 'report');
      if (r.status !== 0 || !report) {
        const error = parseFerry(r.stdout, 'error') ?? parseFerry(r.stderr, 'error');
        row.error = error ? { code: error.code, message: error.message } : { code: `EXIT_${r.status}`, message: r.stderr.trim().slice(-500) };
        return row;
      }
      Object.assign(row, pick(report, ['downtimeMs', 'totalMs', 'bytesSent', 'bytesSentFrozen', 'phasesMs', 'strategy', 'rounds', 'precopy', 'restoreSteps']));
      row.phaseBytes = phaseBytesOf(r.stderr);
      if (report.warnings?.length) row.warnings = report.warnings;
    }
    row.clientDowntimeMs = client?.longestSilenceMs;
    row.connectionSurvived = client?.connectionSurvived === true;
    row.destinationOutRsts = await tcpCounter('h2', name, 'OutRsts');
    // Resets that refused the client's reconnection attempts are expected; the rest went to the first connection.
    if (row.destinationOutRsts !== undefined && client?.refused !== undefined) {
      row.destinationResetsOfFirst = Math.max(0, row.destinationOutRsts - client.refused);
    }
    const verdict = await ctl('h2', ...(lxc ? ['--ctl', control] : []), 'verify', name).catch((err) => ({ verdict: `error: ${err.message}` }));
    row.memory = verdict.verdict;
    row.ok = row.memory === 'ok';
    return row;
  } catch (err) {
    row.error = row.error ?? { code: 'BENCH', message: err.message };
    return row;
  } finally {
    if (probe) probe.kill();
    await removeContainer(name).catch(() => undefined);
    if (thpBefore) setThp(thpBefore);
  }
}

/** Sets the kernel's THP mode; returns the one it replaces. */
function setThp(mode) {
  const before = /\[(\w+)\]/.exec(fs.readFileSync(THP_FILE, 'utf8'))[1];
  originalThp ??= before;
  fs.writeFileSync(THP_FILE, mode);
  return before;
}
/** The machine's own THP mode, put back at exit whatever happened. */
let originalThp;

/**
 * A TCP counter of the container's network namespace on HOST (from /proc/net/snmp, as seen from inside it). The
 * namespace on the destination is new, so OutRsts counts the resets it sent since it was made: a client
 * retransmission that arrives after its interface came up and before CRIU restored the socket gets one.
 */
async function tcpCounter(host, name, counter) {
  const r = await onHost(host, ['nsenter', `--net=/run/netns/ferry-ct-${name}`, 'cat', '/proc/self/net/snmp'], { timeoutMs: 30_000 });
  const [head, values] = r.stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
  if (r.status !== 0 || !head || !values) return undefined;
  const i = head.split(/\s+/).indexOf(counter);
  return i > 0 ? Number(values.split(/\s+/)[i]) : undefined;
}

/** Bytes per phase from ferry's JSON events on stderr ({"event":"phase-end","phase":P,"ms":N,"bytes":B}). */
function phaseBytesOf(stderr) {
  const out = {};
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line);
      if (e.event === 'phase-end' && typeof e.bytes === 'number') out[e.phase] = (out[e.phase] ?? 0) + e.bytes;
    } catch {
      /* not JSON */
    }
  }
  return out;
}

function pick(o, keys) {
  const out = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

// ------------------------------------------------------------------------------------------------ statistics

/** Median rows per (size, link, method), with ratios against the naive run of the same run index. */
function summarize(rows, options, methods) {
  const out = [];
  for (const link of options.links) {
    for (const sizeMib of options.sizes) {
      const of = (method) => rows.filter((r) => !r.warmup && r.link === link && r.sizeMib === sizeMib && r.method === method);
      for (const method of methods) {
        const naiveRows = of(naiveFor(method));
        const rs = of(method);
        if (!rs.length) continue;
        const good = rs.filter((r) => r.error === undefined);
        const ratio = (key) => ratioByRun(good, naiveRows, key);
        out.push({
          link,
          sizeMib,
          method,
          ...trialCounts(rs),
          clientDowntimeMs: median(good.map((r) => r.clientDowntimeMs)),
          clientDowntimeP95Ms: percentile(good.map((r) => r.clientDowntimeMs), 0.95),
          downtimeMs: median(good.map((r) => r.downtimeMs)),
          downtimeP95Ms: percentile(good.map((r) => r.downtimeMs), 0.95),
          totalMs: median(good.map((r) => r.totalMs)),
          wallMs: median(good.map((r) => r.wallMs)),
          bytesSent: median(good.map((r) => r.bytesSent)),
          bytesSentFrozen: median(good.map((r) => r.bytesSentFrozen)),
          survived: good.filter((r) => r.connectionSurvived).length,
          resetByDestination: good.filter((r) => !r.connectionSurvived && resetByDestination(r)).length,
          steadyAfterMs: median(good.map((r) => (r.clientSteady ? r.settleMs : undefined))),
          neverSteady: good.filter((r) => r.clientSteady === false).length,
          verified: good.filter((r) => r.memory === 'ok').length,
          reconnects: median(good.map((r) => r.client?.reconnects)),
          clientRatio: isNaive(method) ? undefined : ratio('clientDowntimeMs'),
          totalRatio: isNaive(method) ? undefined : ratio('totalMs'),
          phasesMs: medianPhases(good),
          frozenMiBps: median(good.map((r) => frozenThroughput(r)?.mibps)),
          frozenCarrier: mostCommon(good.map((r) => frozenThroughput(r)?.phase)),
          pagesMiBps: median(good.map((r) => throughput(r, 'transfer-pages'))),
          precopy: precopySummary(good),
          restoreSteps: restoreStepsSummary(good),
        });
      }
    }
  }
  return out;
}

/** Pre-copy trials: rounds, why they ended, source CPU per round, and how much of the final dump h2 already held. */
/** Medians of the destination's restore steps (ferry rows whose agent reports them). */
function restoreStepsSummary(good) {
  const withSteps = good.filter((r) => r.restoreSteps);
  if (withSteps.length === 0) return undefined;
  const of = (f) => median(withSteps.map(f));
  return {
    agentMs: of((r) => r.restoreSteps.agentMs),
    prepareMs: of((r) => r.restoreSteps.prepareMs),
    toolMs: of((r) => r.restoreSteps.toolMs),
    criuMs: of((r) => r.restoreSteps.criu?.restoreMs),
    forkingMs: of((r) => r.restoreSteps.criu?.forkingMs),
    finishMs: of((r) => r.restoreSteps.finishMs),
  };
}

function restoreStepsTable(summary) {
  const rows = summary.filter((s) => s.succeeded && s.restoreSteps);
  if (rows.length === 0) return '';
  const head =
    '## The restore phase, step by step (medians, ms)\n\n' +
    "The destination's side of the restore phase: *agent* is its own preparation (the page server's end, the pre-copy chain), *prepare* what the " +
    'runtime adapter puts in place before `runc restore` (network namespace, packet hold, bundle), *runc restore* the tool with CRIU inside it ' +
    '(*CRIU* is CRIU\'s own restore time from its stats-restore, forking included), *finish* what follows (the state read back). The rest of ' +
    'the restore phase is the request and its answer.\n\n' +
    '| size | link | method | restore phase | agent | prepare | runc restore | CRIU | CRIU forking | finish |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|';
  const ms = (v) => (v === undefined ? '' : fmtMs(v));
  const lines = rows.map((s) => {
    const r = s.restoreSteps;
    return `| ${sizeLabel(s.sizeMib)} | ${s.link} | ${methodLabel(s.method)} | ${ms(s.phasesMs.restore)} | ${ms(r.agentMs)} | ${ms(r.prepareMs)} | ${ms(r.toolMs)} | ${ms(r.criuMs)} | ${ms(r.forkingMs)} | ${ms(r.finishMs)} |`;
  });
  return `${head}\n${lines.join('\n')}\n`;
}

function precopySummary(good) {
  const withRounds = good.filter((r) => r.precopy?.rounds?.length);
  if (!withRounds.length) return undefined;
  const cpuPerRound = withRounds.map((r) => r.precopy.rounds.reduce((a, x) => a + x.cpuMs, 0) / r.precopy.rounds.length);
  const cpuPerGiB = withRounds.map((r) => {
    const scanned = r.precopy.rounds.reduce((a, x) => a + x.scannedPages, 0) * PAGE_SIZE;
    return scanned > 0 ? (r.precopy.rounds.reduce((a, x) => a + x.cpuMs, 0) * 1024 ** 3) / scanned : undefined;
  });
  const outcomes = {};
  for (const r of withRounds) outcomes[r.precopy.outcome] = (outcomes[r.precopy.outcome] ?? 0) + 1;
  return {
    rounds: median(withRounds.map((r) => r.precopy.rounds.length)),
    outcomes,
    reason: withRounds[0].precopy.reason,
    lastRoundMiB: median(withRounds.map((r) => r.precopy.rounds.at(-1).bytes / 2 ** 20)),
    cpuMsPerRound: median(cpuPerRound),
    cpuMsPerGiBScanned: median(cpuPerGiB),
    heldShare: median(withRounds.map((r) => (r.precopy.finalPages ? r.precopy.finalPagesHeld / r.precopy.finalPages : undefined))),
  };
}

function precopyTable(summary) {
  const rows = summary.filter((s) => s.precopy);
  if (!rows.length) return '';
  const stop = (s) => summary.find((x) => x.sizeMib === s.sizeMib && x.link === s.link && x.method === 'stop-and-copy' + (thpOf(s.method) ? `${THP_SEP}${thpOf(s.method)}` : ''));
  const lines = rows.map((s) => {
    const p = s.precopy;
    const sc = stop(s);
    const vs = (a, b) => (a !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
    return `| ${sizeLabel(s.sizeMib)} | ${s.link} | ${methodLabel(s.method)} | ${p.rounds} | ${Object.entries(p.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')} | ${p.lastRoundMiB.toFixed(1)} | ${Math.round(p.cpuMsPerRound)} | ${Math.round(p.cpuMsPerGiBScanned)} | ${(100 * p.heldShare).toFixed(1)}% | ${fmtMiB(s.bytesSentFrozen)} (${(100 * s.bytesSentFrozen / (s.sizeMib * 2 ** 20)).toFixed(1)}% of memory) | ${vs(s.downtimeMs, sc?.downtimeMs)} | ${vs(s.clientDowntimeMs, sc?.clientDowntimeMs)} |`;
  });
  return `## Pre-copy (medians)

| size | link | method | rounds | ended by | last round MiB | source CPU ms per round | CPU ms per GiB read | final dump already on h2 | MiB sent frozen | freeze→running vs stop-and-copy | client downtime vs stop-and-copy |
|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|
${lines.join('\n')}

Example policy reason: ${rows.map((s) => `${sizeLabel(s.sizeMib)} ${s.link}: "${s.precopy.reason}"`).join('; ')}.
`;
}

/**
 * The memory transfer while the container is stopped: the frozen phase that sent the most bytes (transfer-images
 * for an images copy, checkpoint when the dump streams its pages to the destination) and its MiB/s.
 */
function frozenThroughput(row) {
  const phase = ['checkpoint', 'transfer-images'].sort((a, b) => (row.phaseBytes?.[b] ?? 0) - (row.phaseBytes?.[a] ?? 0))[0];
  const mibps = throughput(row, phase);
  return mibps === undefined ? undefined : { phase, mibps };
}

function mostCommon(values) {
  const counts = new Map();
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** MiB/s of one phase, when it moved at least 1 MiB and took at least 50 ms (else the figure is noise). */
function throughput(row, phase) {
  const bytes = row.phaseBytes?.[phase];
  const ms = row.phasesMs?.[phase];
  return bytes >= 2 ** 20 && ms >= 50 ? bytes / 2 ** 20 / (ms / 1000) : undefined;
}

// ------------------------------------------------------------------------------------------------ rendering

const fmtDuration = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
const fmtMiB = (b) => (b === undefined ? '–' : `${(b / 2 ** 20).toFixed(1)}`);
const fmtRate = (x) => (x === undefined ? '' : `${Math.round(x)}`);
const thpLabel = (m) => (thpOf(m) ? `, THP ${thpOf(m)}` : '');
const methodLabel = (m) => baseLabel(baseMethod(m)) + thpLabel(m);
/** A ferry method's name in tables: its flags, but for the CRIU-filled variant (its agent command is noise there). */
const ferryLabel = (m) => (m === LAZY_RESTORE_CRIU ? "ferry hash-pre-copy --lazy-restore, CRIU's daemon filling" : `ferry ${strategyFlags(m).slice(1).join(' ')}`);
const baseLabel = (m) =>
  m === NAIVE_METHOD ? 'naive (runc + tar \\| ssh)' : m === LXC_NAIVE ? 'LXC: lxc-checkpoint + tar \\| ssh' : isLxc(m) ? `LXC: ferry ${m.slice(LXC.length)}` : ferryLabel(m);
/** Short names for prose: naive, lxc-checkpoint, ferry STRATEGY, ferry lxc STRATEGY. */
const shortLabel = (method) => {
  const m = baseMethod(method);
  return (m === NAIVE_METHOD ? 'naive' : m === LXC_NAIVE ? 'lxc-checkpoint' : isLxc(m) ? `ferry lxc ${m.slice(LXC.length)}` : ferryLabel(m)) + thpLabel(method);
};

function resultsTable(summary, runs) {
  const head =
    '| size | link | method | client downtime ms | p95 | ratio vs naive | freeze→running ms | p95 | total ms | total ratio | MiB sent | MiB sent frozen | connection survived | memory ok |\n' +
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|';
  const lines = summary.map((s) => {
    if (!s.succeeded) {
      return `| ${sizeLabel(s.sizeMib)} | ${s.link} | ${methodLabel(s.method)} | failed ${s.runs}/${s.runs} | | | | | | | | | | |`;
    }
    const of = (n) => `${n}/${s.succeeded}${s.succeeded < s.runs ? ` (${s.runs - s.succeeded} failed)` : ''}`;
    return [
      sizeLabel(s.sizeMib),
      s.link,
      methodLabel(s.method),
      fmtMs(s.clientDowntimeMs),
      fmtMs(s.clientDowntimeP95Ms),
      fmtRatio(s.clientRatio),
      fmtMs(s.downtimeMs),
      fmtMs(s.downtimeP95Ms),
      fmtMs(s.totalMs),
      fmtRatio(s.totalRatio),
      fmtMiB(s.bytesSent),
      fmtMiB(s.bytesSentFrozen),
      s.survived === s.succeeded
        ? `yes (${of(s.survived)})`
        : `**no** (${of(s.survived)}${s.resetByDestination ? `; ${s.resetByDestination} reset by h2` : ''})`,
      s.verified === s.succeeded ? `ok (${of(s.verified)})` : `**${of(s.verified)}**`,
    ]
      .join(' | ')
      .replace(/^/, '| ')
      .concat(' |');
  });
  return `${head}\n${lines.join('\n')}\n\nMedians of ${runs} run${runs > 1 ? 's' : ''} per row, and the 95th percentile (nearest rank: with fewer than 20 runs, the slowest); ratios are medians of per-run ratios against the naive run of the same run.`;
}

function phasesTable(summary) {
  const order = ['connect', 'negotiate', 'copy-bundle', 'freeze', 'checkpoint', 'delete-source-netns', 'resync-bundle', 'transfer-images', 'restore', 'commit', 'cleanup'];
  const seen = new Set(summary.flatMap((s) => Object.keys(s.phasesMs)));
  const phases = [...order.filter((p) => seen.has(p)), ...[...seen].filter((p) => !order.includes(p))];
  const head =
    `| size | link | method | ${phases.join(' | ')} | MiB/s while frozen | lazy pages MiB/s | client steady after |\n` +
    `|---|---|---|${phases.map(() => '--:').join('|')}|--:|--:|--:|`;
  const lines = summary
    .filter((s) => s.succeeded)
    .map(
      (s) =>
        `| ${sizeLabel(s.sizeMib)} | ${s.link} | ${methodLabel(s.method)} | ${phases.map((p) => (s.phasesMs[p] === undefined ? '' : fmtMs(s.phasesMs[p]))).join(' | ')} | ${fmtRate(s.frozenMiBps)}${s.frozenCarrier ? ` (${s.frozenCarrier})` : ''} | ${fmtRate(
          s.pagesMiBps,
        )} | ${fmtMs(s.steadyAfterMs)}${s.neverSteady ? ` (${s.neverSteady} never)` : ''} |`,
    );
  return `${head}\n${lines.join('\n')}`;
}

function consoleRow(r) {
  const what = `${sizeLabel(r.sizeMib).padStart(7)} ${r.link.padEnd(8)} run ${String(r.run).padStart(2)} ${(r.warmup ? 'warm-up ' : '') + shortLabel(r.method)}`;
  if (r.error) return `${what}: FAILED ${r.error.code}: ${r.error.message.split('\n')[0].slice(0, 200)}`;
  const phases = Object.entries(r.phasesMs ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `${what}: client ${r.clientDowntimeMs} ms, freeze→running ${r.downtimeMs} ms, total ${r.totalMs} ms, ` +
    `${fmtMiB(r.bytesSent)} MiB (${fmtMiB(r.bytesSentFrozen)} frozen), connection ${r.connectionSurvived ? 'kept' : 'LOST'}, memory ${r.memory}` +
    `${r.clientSteady ? (r.settleMs > 1500 ? `, client answered steadily only ${r.settleMs} ms after the command returned` : '') : ', client NOT answered steadily after 60 s'}` +
    `${r.client?.reconnects ? `, ${r.client.reconnects} reconnect(s)` : ''}` +
    `${r.client?.firstClosedBy ? ` (${r.client.firstClosedBy})` : ''}` +
    `${r.destinationOutRsts ? `, h2 sent ${r.destinationOutRsts} TCP reset(s), ${r.client?.refused ?? '?'} of them refusing reconnections` : ''}\n      phases: ${phases}` +
    `${r.restoreSteps ? `\n      restore steps: ${Object.entries(r.restoreSteps).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')}` : ''}`
  );
}

async function machineFacts() {
  // This checkout's ferry: /usr/local/bin/ferry may be another checkout's, or one being rebuilt.
  const doctor = await run(process.execPath, [path.join(ROOT, 'packages', 'cli', 'bin', 'ferry.js'), 'doctor', '--json']);
  const d = lastJsonObject(doctor.stdout) ?? {};
  const cpus = os.cpus();
  const git = await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = await run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  const ssh = await run('ssh', ['-V']);
  return {
    kernel: d.kernel ?? os.release(),
    criu: d.criu?.version?.text,
    runc: d.runtimes?.find((r) => r.name === 'runc')?.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    openssh: (ssh.stderr || ssh.stdout).trim(),
    strategies: d.strategies,
    commit: git.status === 0 ? git.stdout.trim() + (dirty.stdout.trim() ? ' (with local changes)' : '') : undefined,
  };
}

function lastJsonObject(text) {
  try {
    return JSON.parse(text);
  } catch {
    return lastJson(text);
  }
}

function observations(summary) {
  const notes = [];
  for (const s of summary) {
    if (isNaive(s.method) || !s.succeeded) continue;
    const naive = summary.find((n) => n.method === naiveFor(s.method) && n.link === s.link && n.sizeMib === s.sizeMib && n.succeeded);
    const frozen = ['freeze', 'checkpoint', 'resync-bundle', 'final-round', 'mark-held', 'transfer-images', 'restore'].filter((p) => s.phasesMs[p] !== undefined);
    const frozenTotal = frozen.reduce((a, p) => a + s.phasesMs[p], 0);
    const biggest = [...frozen].sort((a, b) => s.phasesMs[b] - s.phasesMs[a])[0];
    let text =
      `${sizeLabel(s.sizeMib)}, ${s.link}, ${shortLabel(s.method)}: of ${fmtDuration(s.downtimeMs)} frozen, ${biggest} took ${fmtDuration(s.phasesMs[biggest])} ` +
      `(${Math.round((100 * s.phasesMs[biggest]) / Math.max(frozenTotal, 1))}% of the frozen phases)`;
    if (s.frozenMiBps && naive?.frozenMiBps) {
      text += `; memory moved at ${Math.round(s.frozenMiBps)} MiB/s (${s.frozenCarrier}) against ${Math.round(naive.frozenMiBps)} MiB/s for ${shortLabel(naive.method)}'s tar | ssh`;
    }
    if (s.pagesMiBps) {
      text += `; after the restore, lazy pages arrived at ${Math.round(s.pagesMiBps)} MiB/s for ${fmtDuration(s.phasesMs['transfer-pages'])}`;
    }
    const before = (s.phasesMs.connect ?? 0) + (s.phasesMs.negotiate ?? 0) + (s.phasesMs['copy-bundle'] ?? 0);
    if (before) text += `; ${fmtDuration(before)} went to connect + negotiate + copy-bundle before the freeze`;
    notes.push(`${text}.`);
  }
  return notes;
}

/**
 * Did h2 reset the client's first connection? The resets its new network namespace sent, less those that refused
 * the client's reconnection attempts (raw results of older runs lack the latter: then any reset counts).
 */
function resetByDestination(r) {
  return r.client?.firstClosedBy === 'ECONNRESET' && (r.destinationResetsOfFirst ?? r.destinationOutRsts) > 0;
}

/** What the lost connections had in common, from the client's error and the destination's TCP counters. */
function connectionNotes(rows) {
  const measured = rows.filter((r) => !r.warmup && r.error === undefined);
  const lost = measured.filter((r) => !r.connectionSurvived);
  if (!lost.length) return `The client's TCP connection survived every move (${measured.length} trials).`;
  const byReset = lost.filter(resetByDestination);
  const exact = lost.every((r) => r.destinationResetsOfFirst !== undefined);
  const keptClean = measured.filter((r) => r.connectionSurvived && r.destinationOutRsts === 0).length;
  const kept = measured.filter((r) => r.connectionSurvived).length;
  const per = [...new Set(lost.map((r) => r.method))]
    .map((m) => `${shortLabel(m)} ${lost.filter((r) => r.method === m).length}/${measured.filter((r) => r.method === m).length}`)
    .join(', ');
  let text = `The client's TCP connection was lost in ${lost.length} of ${measured.length} trials (${per}).`;
  if (byReset.length === lost.length) {
    text +=
      " In each of them the client got ECONNRESET and the container's new network namespace on h2 had sent TCP resets " +
      `(\`OutRsts\` in its /proc/net/snmp${exact ? ', beyond those that refused the client\'s reconnection attempts' : ''}); ` +
      `it had sent none in ${keptClean} of the ${kept} trials that kept their connection. ` +
      'That is a retransmission from the client reaching h2 after the re-created interface was up and before CRIU had ' +
      'restored the socket (the kernel answers a segment for a connection it does not know with a reset).';
    if (lost.some((r) => baseMethod(r.method) === NAIVE_METHOD)) {
      text += ' The naive script brings the interface up before `runc restore`; bringing the bridge end of the veth up only after the restore closes the window.';
    }
    if (!lost.some((r) => !isNaive(r.method))) text += ' No ferry trial lost its connection.';
  } else if (byReset.length) {
    text += ` ${byReset.length} of them were reset by h2's new network namespace (ECONNRESET, \`OutRsts\` > 0 there).`;
  }
  const elsewhere = lost.filter((r) => r.client?.firstClosedBy === 'ECONNRESET' && r.destinationResetsOfFirst === 0);
  if (elsewhere.length) {
    text +=
      ` In ${elsewhere.length === lost.length ? (lost.length === 1 ? 'it' : 'all of them') : `${elsewhere.length} of them`} the client got ECONNRESET but h2's new network namespace ` +
      "had sent no reset beyond those that refused the client's reconnection attempts: the reset came from elsewhere" +
      (elsewhere.every((r) => baseMethod(r.method) === NAIVE_METHOD)
        ? ' (the source side, whose network namespace the naive script deletes only after `runc checkpoint` has returned, is the suspect).'
        : '.');
  }
  return text;
}

/** How much longer the client's silence was than the method's own freeze→running figure (median per method). */
function clientExtraNotes(rows, methods) {
  const notes = [];
  for (const m of methods) {
    const rs = rows.filter((r) => !r.warmup && r.method === m && r.error === undefined && r.connectionSurvived);
    const extra = median(rs.map((r) => r.clientDowntimeMs - r.downtimeMs));
    if (extra === undefined) continue;
    notes.push(`${shortLabel(m)} ${extra > 0 ? '+' : ''}${Math.round(extra)} ms`);
  }
  if (!notes.length) return '';
  return (
    `Client downtime minus freeze→running (median over the trials that kept their connection): ${notes.join(', ')}. ` +
    'What the client sent while the container was stopped is lost and goes again only when its TCP retransmission ' +
    'timer fires (backing off 0.2, 0.4, 0.8 s... from the first loss): where the client saw more, it was waiting for ' +
    'that retransmission after the restore.'
  );
}

function renderMarkdown({ options, facts, summary, rows, skipped, startedAt, elapsedMs, methods, docker, podman }) {
  const cmd = `node bench/migration-bench.js${options.argv.length ? ` ${options.argv.join(' ')}` : ''}`;
  const failures = rows.filter((r) => r.error && !r.warmup);
  return `# Migration benchmark

<!-- generated by bench/migration-bench.js; edit the generator, not this file -->

Run ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, took ${(elapsedMs / 60000).toFixed(1)} minutes: \`${cmd}\`
(\`npm run bench\` runs the native bench and then this one; \`npm run bench:migrate -- --quick\` for a 1-run smoke test).

Machine: kernel ${facts.kernel}, CRIU ${facts.criu ?? '?'}, ${facts.runc ?? 'runc ?'}, ${facts.cpus} CPUs (${facts.cpuModel}), ${facts.memGiB} GiB RAM,
Node ${facts.node}, ${facts.openssh}; ferry at commit ${facts.commit ?? '?'}. A shared, noisy machine: compare rows of one run,
not runs of different days.

## What was measured

Two sandbox hosts on one machine (\`scripts/sandbox-hosts.sh\`, network namespaces with their own sshd, PID and mount
namespaces; the link is a veth pair, unshaped or limited with \`tc tbf\` on both ends). Per trial: a fresh ${
    methods.some(isLxc) ? (methods.some((m) => !isLxc(m)) ? 'runc or LXC' : 'LXC') : 'runc'
  }
container on h1 running the workload fixture (${options.sizes.map(sizeLabel).join(' and ')} of memory that it keeps
rewriting at ${options.dirtyPercent}% of its pages per second: ${options.sizes
    .map((m) => `${Math.round((m * 256 * options.dirtyPercent) / 100)} pages/s at ${sizeLabel(m)}`)
    .join(', ')}), a TCP echo service on :${PORT}, and an outside client on the containers' LAN that sends a ping every
${PING_INTERVAL_MS} ms on one connection, from ${SETTLE_BEFORE_MS / 1000} s before the move until its answers flow steadily again, plus ${SETTLE_AFTER_MS / 1000} s (a broken
connection is replaced by new ones). Then the move to h2, the workload's own memory check on h2, and everything removed. Methods take turns within each run (the order rotates from run to run).

- **client downtime**: the longest silence the client saw between two answers (bench/downtime-probe.js). What a user
  of the service sees.
- **freeze→running**: ferry's own \`downtimeMs\` (freeze to the restored container running on h2); for the naive
  script, from \`runc checkpoint\` to \`runc restore\` returning.
- **total**: ferry's \`totalMs\` (connect to cleanup); the naive script's start to end.
- **MiB sent**: payload bytes sent to h2 (ferry's \`bytesSent\`; the naive script's tar streams), and the part sent
  while the container was stopped.
- **connection survived**: the client's first TCP connection was never reset and answered after the longest silence.
- **client steady after**: from the command's return until the client had been answered without a silence of
  ${STEADY_SILENCE_MS} ms for ${STEADY_MS / 1000} s (checked every 100 ms, at most ${STEADY_MAX_MS / 1000} s): how long service stays choppy after the move.
- **memory ok**: the workload's check of all its pages after the move.

${options.thp?.length ? `Each method ran once per transparent huge page mode (${options.thp.join(', ')}; \`--thp\`): the mode was written to ${THP_FILE} for the trial (both
sandbox hosts share the kernel, so the source's and the destination's memory alike) and the machine's own mode put back after it.

` : ''}Methods:
${[...new Set(methods.map(baseMethod))].map((m) => `- ${m === NAIVE_METHOD ? `**naive**: \`bench/naive-migrate.sh\`, what an operator would script: copy config.json (tar | ssh, container
  still running; with a new \`linux.cgroupsPath\` because the sandbox hosts share one cgroup tree), \`runc checkpoint
  --tcp-established --file-locks\`, delete the source's network namespace, \`tar -C IMAGES -cf - . | ssh -F ssh_config
  h2 'tar -xf -'\` (OpenSSH, aes128-gcm), then in one ssh session re-create the network namespace with the same
  interface, MAC and address plugged into the LAN bridge and \`runc restore -d\`. No rollback. The rootfs and the
  bind-mounted state directory are paths both sandbox hosts share and are not copied (ferry copies the bundle
  directory, not the rootfs, either).` : m === LXC_NAIVE ? `**LXC: lxc-checkpoint + tar | ssh**: \`bench/naive-lxc-migrate.sh\`, LXC's own path: copy the container
  directory (config and rootfs; tar | ssh, container still running), \`lxc-checkpoint -s -D IMAGES\`, \`tar | ssh\` the
  images, \`lxc-checkpoint -r -D IMAGES\` on h2. The LXC container has a veth on each host's lxcbr0, which the sandbox
  plugs into the LAN. No rollback.` : isLxc(m) ? `**LXC: ferry ${m.slice(LXC.length)}**: the same LXC container, \`ferry migrate lxc:NAME --to h2 --strategy ${m.slice(LXC.length)} --json\` run on h1.` : `**${ferryLabel(m)}**: \`ferry migrate NAME --to h2 ${strategyFlags(m).join(' ')} --json\` run on h1.${m === LAZY_RESTORE_CRIU ? " As hash-pre-copy --lazy-restore, but CRIU's lazy-pages daemon fills the copy (answered by ferry's relay), not ferry's own handler." : ''}${m === AUTO ? ' What ferry picks by itself (here hash-pre-copy with a lazy restore; the report says why).' : ''}${m === LAZY_RESTORE ? ' The destination restores without writing the memory while frozen and fills the running copy from the pages its rounds brought (the source is held until every page is in: the fill is in the total, not in the freeze).' : ''}`}`).join('\n')}
${skipped.length ? `\nSkipped: ${skipped.map((s) => `${shortLabel(s.strategy)} (${s.code}: ${s.reason})`).join('; ')}.\n` : ''}
## Results

${resultsTable(summary, options.runs)}

${connectionNotes(rows)}

${clientExtraNotes(rows, methods)}

${precopyTable(summary)}
${restoreStepsTable(summary)}
## Where the time goes (medians, ms)

${phasesTable(summary)}

${observations(summary)
  .map((n) => `- ${n}`)
  .join('\n')}
${failures.length ? `\n## Failed trials\n\n${failures.map((r) => `- ${sizeLabel(r.sizeMib)} ${r.link} run ${r.run} ${r.method}: ${r.error.code}: ${r.error.message.replace(/\s+/g, ' ').slice(0, 400)}`).join('\n')}\n` : ''}
${renderDockerSection(docker)}
${renderPodmanSection(podman)}
Raw results: \`${path.relative(ROOT, options.jsonOut)}\` (every trial, with the client's counts and all phases).
`;
}

// ------------------------------------------------------------------------------------------------ main

let cleaningUp;
/** Set once this process holds the lock: only then is the sandbox its own to take down. */
let ownsSandbox = false;
const LOCK_FILE = `/run/lock/${SANDBOX_NAME}-migration-bench.pid`;

async function cleanup() {
  cleaningUp ??= (async () => {
    for (const child of children) child.kill('SIGTERM');
    if (originalThp) fs.writeFileSync(THP_FILE, originalThp);
    if (!ownsSandbox) return;
    for (const name of [...live.keys()]) await removeContainer(name).catch(() => undefined);
    const down = await sandbox('down');
    if (down.status !== 0) process.stderr.write(`bench: sandbox down failed: ${down.stderr}\n`);
    fs.rmSync(LOCK_FILE, { force: true });
  })();
  return cleaningUp;
}

/** One benchmark at a time: the sandbox and its addresses are fixed. A lock left by a dead process is taken over. */
function takeLock() {
  fs.mkdirSync(path.dirname(LOCK_FILE), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(LOCK_FILE, `${process.pid}\n`, { flag: 'wx' });
      ownsSandbox = true;
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(LOCK_FILE, 'utf8').trim());
      let alive = false;
      try {
        alive = pid > 0 && (process.kill(pid, 0), true);
      } catch {
        alive = false;
      }
      if (alive) {
        throw Object.assign(new Error(`another migration bench (pid ${pid}) is running: ${LOCK_FILE}`), { exitCode: 2 });
      }
      fs.rmSync(LOCK_FILE, { force: true });
    }
  }
  throw new Error(`could not take ${LOCK_FILE}`);
}

/** --from-json: the markdown of an earlier run, rendered by this version of the generator. */
function renderAgain(options) {
  const data = JSON.parse(fs.readFileSync(options.fromJson, 'utf8'));
  const runOptions = { ...data.options, jsonOut: options.fromJson };
  const out = options.outGiven ? options.out : data.options.out;
  const summary = summarize(data.rows, runOptions, data.methods);
  const markdown = renderMarkdown({
    options: runOptions,
    facts: data.facts,
    summary,
    rows: data.rows,
    skipped: data.skipped,
    startedAt: new Date(data.startedAt),
    elapsedMs: data.elapsedMs ?? 0,
    methods: data.methods,
    docker: data.docker,
    podman: data.podman,
  });
  fs.writeFileSync(out, markdown);
  process.stdout.write(`${resultsTable(summary, runOptions.runs)}\n\nwritten to ${path.relative(process.cwd(), out)}${data.complete ? '' : ' (from an incomplete run)'}\n`);
  return 0;
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (options.fromJson) return renderAgain(options);
  if (process.getuid?.() !== 0) throw Object.assign(new Error('the migration benchmark needs root (namespaces, runc, CRIU)'), { exitCode: 2 });
  takeLock();
  const startedAt = new Date();
  const t0 = performance.now();
  const log = (line) => process.stdout.write(`${line}\n`);

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      process.stderr.write(`\nbench: ${sig}, cleaning up (containers on both hosts, sandbox ${SANDBOX_NAME})...\n`);
      cleanup().finally(() => process.exit(130));
    });
  }

  log(`== migration bench: sizes ${options.sizes.map(sizeLabel).join(', ')}; links ${options.links.join(', ')}; ${options.runs} run(s); ` +
    `strategies ${options.strategies.join(', ')}${options.naive ? ' + naive' : ''}; runtimes ${options.runtimes.join(', ')}; dirty ${options.dirtyPercent}%/s`);
  log(`== sandbox ${SANDBOX_NAME} in ${SANDBOX_DIR}`);
  await sandbox('down');
  await mustSandbox('up');
  const facts = await machineFacts();
  log(`   kernel ${facts.kernel}, CRIU ${facts.criu}, ${facts.cpus} CPUs, ${facts.runc}`);

  const rows = [];
  const skipped = [];
  const methods = [];
  // Raw results after every trial, so that an interrupted run keeps what it measured.
  const writeRaw = (extra = {}) => {
    fs.mkdirSync(path.dirname(options.jsonOut), { recursive: true });
    fs.writeFileSync(options.jsonOut, `${JSON.stringify({ startedAt, options, facts, skipped, methods, rows, ...extra }, null, 2)}\n`);
  };
  const record = (row) => {
    rows.push(row);
    log(consoleRow(row));
    writeRaw({ complete: false });
  };

  // Warm-up (builds the rootfs and fixture on first use, warms caches) and the strategy check: one small migration
  // per method. A strategy ferry refuses for a missing feature is skipped for the whole run.
  log('== warm-up: one 64 MiB migration per method, unshaped');
  const runcMethods = options.runtimes.includes('runc') ? [...options.strategies, ...(options.naive ? [NAIVE_METHOD] : [])] : [];
  const lxcMethods = options.runtimes.includes('lxc')
    ? [...options.strategies.filter((s) => LXC_STRATEGIES.includes(s)).map((s) => `${LXC}${s}`), ...(options.naive ? [LXC_NAIVE] : [])]
    : [];
  const variants = (m) => (options.thp.length ? options.thp.map((t) => `${m}${THP_SEP}${t}`) : [m]);
  for (const method of [...runcMethods, ...lxcMethods].flatMap(variants)) {
    if (interrupted) return;
    const row = await trial({ method, sizeMib: WARMUP_MIB, link: 'unshaped', run: 0, dirtyPercent: options.dirtyPercent, warmup: true });
    record(row);
    if (row.error?.code === 'ERR_PRECHECK_FEATURE_MISSING') {
      skipped.push({ strategy: method, code: row.error.code, reason: row.error.message });
      log(`   skipping ${shortLabel(method)}: ${row.error.message}`);
    } else {
      methods.push(method);
    }
  }

  for (const link of options.links) {
    await mustSandbox('shape', link === 'unshaped' ? 'off' : link);
    for (const sizeMib of options.sizes) {
      log(`== ${sizeLabel(sizeMib)}, link ${link}`);
      for (let r = 1; r <= options.runs; r++) {
        // Rotate the order of methods from run to run (A B C, B C A, ...): no method always goes first.
        const order = methods.map((_, i) => methods[(i + r - 1) % methods.length]);
        for (const method of order) {
          if (interrupted) return;
          record(await trial({ method, sizeMib, link, run: r, dirtyPercent: options.dirtyPercent }));
        }
      }
      const partial = summarize(rows, { ...options, links: [link], sizes: [sizeMib] }, methods);
      log(resultsTable(partial, options.runs).split('\n').slice(0, -2).join('\n'));
    }
  }
  await mustSandbox('shape', 'off');

  let docker;
  if (options.docker && !interrupted) {
    docker = await runDockerBench({
      sizes: options.sizes,
      runs: options.runs,
      dirtyPercent: options.dirtyPercent,
      sandboxScript: SANDBOX_SCRIPT,
      sandboxName: SANDBOX_NAME,
      sandboxDir: SANDBOX_DIR,
      sshConfig: SSH_CONFIG,
      hostsFile: HOSTS_FILE,
      env,
      onHost: dockerOnHost,
      log,
      interrupted: () => interrupted,
    }).catch((err) => ({ error: err.message, rows: [], summary: [] }));
    writeRaw({ complete: false, docker });
  }
  let podman;
  if (options.podman && !interrupted) {
    podman = await runPodmanBench({ sizes: options.sizes, runs: options.runs, dirtyPercent: options.dirtyPercent, sshConfig: SSH_CONFIG, hostsFile: HOSTS_FILE, onHost: dockerOnHost, log, interrupted: () => interrupted })
      .catch((err) => ({ error: err.message, rows: [], summary: [] }));
    writeRaw({ complete: false, docker, podman });
  }

  const elapsedMs = performance.now() - t0;
  const summary = summarize(rows, options, methods);
  const markdown = renderMarkdown({ options, facts, summary, rows, skipped, startedAt, elapsedMs, methods, docker, podman });
  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  fs.writeFileSync(options.out, markdown);
  writeRaw({ complete: true, elapsedMs, summary, docker, podman });
  if (options.links.length * options.sizes.length > 1) {
    log('');
    log(resultsTable(summary, options.runs));
  }
  log('');
  log(`== done in ${(elapsedMs / 60000).toFixed(1)} minutes; results in ${path.relative(process.cwd(), options.out)} and ${path.relative(process.cwd(), options.jsonOut)}`);
  const failed = rows.filter((r) => !r.warmup && r.error).length + [docker, podman].reduce((n, x) => n + (x?.error ? 1 : 0) + (x?.rows ?? []).filter((r) => !r.warmup && r.error).length, 0);
  return failed ? 1 : 0;
}

// bench/switchover-bench.js reuses the sandbox, container and client plumbing.
module.exports = { startProbe, ctl, onHost, sandbox, mustSandbox, tcpCounter, removeContainer, parseFerry, lastJson, run, children, live, sleep, LAN_NETNS, SANDBOX_DIR, SANDBOX_NAME, HOSTS_FILE, UPLINK, PORT, PAGE_SIZE, STEADY_MAX_MS, SETTLE_BEFORE_MS, SETTLE_AFTER_MS };
if (require.main !== module) return;

main()
  .then(async (code) => {
    await cleanup();
    process.exit(interrupted ? 130 : code ?? 0);
  })
  .catch(async (err) => {
    process.stderr.write(`bench: ${err.exitCode === 2 ? err.message : err.stack || err}\n`);
    await cleanup();
    process.exit(err.exitCode ?? 1);
  });
