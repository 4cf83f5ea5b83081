#!/usr/bin/env node
'use strict';
/**
 * Fast-start benchmark: how much sooner a slow-starting service answers when it is started from a checkpoint image
 * taken after its start-up than when it boots. Side by side in one run on this host, with runc containers running
 * fixtures/slow-start.c (it builds a TABLE MiB table for INIT ms, then serves lookups over TCP). Root only.
 *
 *   node bench/fast-start-bench.js [--runs 5] [--table-mib 256] [--init-ms 5000] [--out docs/fast-start.md]
 *       [--json-out FILE] [--quick]
 *
 * Once: boot the service in a container, wait until it answers, checkpoint it (`runc checkpoint` through the runc
 * adapter; the container stops, its network namespace stays). Then RUNS rounds of three methods, the order rotating
 * from round to round because the machine is shared and noisy:
 *   boot            `runc run -d` of a fresh container with the same service, until it answers
 *   ferry start     the CLI, `ferry start --from IMAGE --name NAME` (Node start-up included), until it answers
 *   startFromImage  the same call in this process (@ferry/core), until it answers
 * "Answers" is measured by a probe in the container's network namespace (the fixture's --probe mode under
 * nsenter), started before the clock: it connects every millisecond (5 ms connect limit, so a SYN dropped while
 * CRIU locks the network costs milliseconds), sends `get I` and checks the entry against the table's definition.
 * A restored copy must also answer `sum` with the booted original's checksum (outside the timed window). Each
 * container is removed before the next trial. The image stays in the page cache (it was just written and is read
 * again and again), as when one host starts the same image repeatedly.
 *
 * Exit code 0 when every trial answered correctly, 1 when one did not, 2 for bad options, 130 when interrupted.
 */
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { RuncAdapter, startFromImage, imageDirBytes } = require('@ferry/core');
const { prepareSlowStartContainer, queryService, startServiceProbe } = require('@ferry/core/testing');

const ROOT = path.resolve(__dirname, '..');
const FERRY = path.join(ROOT, 'packages', 'cli', 'bin', 'ferry.js');
const WORK_PARENT = '/var/lib/ferry/bench-fast-start';
const METHODS = ['boot', 'ferry start', 'startFromImage'];
const TRIAL_TIMEOUT_MS = 120_000;

function usage() {
  return `usage: node bench/fast-start-bench.js [options]   (root; npm run bench:fast-start)
  --runs N          rounds; each round times every method once (default 5)
  --table-mib N     size of the service's table (default 256)
  --init-ms N       how long the service computes before it listens (default 5000)
  --quick           --runs 2 --table-mib 64 --init-ms 1500, output to /tmp/fast-start-quick.md unless --out
  --out FILE        markdown results (default docs/fast-start.md)
  --json-out FILE   every trial as JSON (default: none)`;
}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      'table-mib': { type: 'string' },
      'init-ms': { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      'json-out': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const runs = Number(values.runs ?? (quick ? 2 : 5));
  const tableMib = Number(values['table-mib'] ?? (quick ? 64 : 256));
  const initMs = Number(values['init-ms'] ?? (quick ? 1500 : 5000));
  const bad = (message) => {
    throw Object.assign(new Error(`${message}\n${usage()}`), { exitCode: 2 });
  };
  if (!Number.isInteger(runs) || runs < 1) bad('--runs must be a whole number >= 1');
  if (!Number.isInteger(tableMib) || tableMib < 1) bad('--table-mib must be a whole number >= 1');
  if (!Number.isInteger(initMs) || initMs < 0) bad('--init-ms must be a whole number >= 0');
  return {
    runs,
    tableMib,
    initMs,
    quick,
    out: path.resolve(values.out ?? (quick ? '/tmp/fast-start-quick.md' : path.join(ROOT, 'docs', 'fast-start.md'))),
    jsonOut: values['json-out'] ? path.resolve(values['json-out']) : undefined,
    argv,
  };
}

// ------------------------------------------------------------------------------------------------ clean-up

const adapter = new RuncAdapter(); // the CLI's defaults, so remove() also cleans what `ferry start` made
/** Clean-ups still to run, newest last. */
const pending = new Map();
let nextCleanup = 0;
let interrupted = false;

function later(what, fn) {
  const key = nextCleanup++;
  pending.set(key, { what, fn });
  return async () => {
    if (!pending.delete(key)) return;
    await fn();
  };
}

async function cleanAll() {
  for (const [key, { what, fn }] of [...pending.entries()].reverse()) {
    pending.delete(key);
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`bench: clean-up of ${what} failed: ${err.message}\n`);
    }
  }
}

// ------------------------------------------------------------------------------------------------ trials

/** Waits for the probe, then runs `start` with the clock running; resolves with the time until the answer. */
async function timeUntilAnswer(netns, address, port, start, check) {
  const probe = startServiceProbe(netns, address, port, { timeoutMs: TRIAL_TIMEOUT_MS });
  const stopProbe = later('a probe', () => probe.stop());
  try {
    await probe.ready;
    const t0 = Date.now();
    const started = await start();
    const answer = await probe.answer;
    if (answer.exitCode !== 0 || answer.verified !== true) {
      throw new Error(`no correct answer: ${answer.output.trim().split('\n').slice(-2).join(' | ')}`);
    }
    const result = { ms: answer.answeredAt - t0, reply: answer.reply, attempts: answer.attempts, ...started };
    if (check) await check(result);
    return result;
  } finally {
    await stopProbe();
  }
}

function runFerry(args) {
  const env = { ...process.env };
  delete env.FERRY_NETNS_UPLINK;
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [FERRY, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status === 0) resolve({ stdout, commandMs: Date.now() - t0 });
      else reject(new Error(`ferry ${args.join(' ')} exited ${status}: ${stderr.trim()}`));
    });
  });
}

async function bootTrial(ctx, name) {
  const c = await prepareSlowStartContainer({ name, tableMib: ctx.tableMib, initMs: ctx.initMs });
  const stop = later(`container ${name}`, () => c.stop());
  try {
    return await timeUntilAnswer(c.netnsPath, c.address, c.port, async () => {
      const t0 = Date.now();
      await c.run();
      return { commandMs: Date.now() - t0 };
    });
  } finally {
    await stop();
  }
}

async function restoreTrial(ctx, name, how) {
  const remove = later(`container ${name}`, () => adapter.remove(name));
  try {
    return await timeUntilAnswer(
      ctx.base.netnsPath,
      ctx.base.address,
      ctx.base.port,
      async () => {
        if (how === 'cli') {
          const { stdout, commandMs } = await runFerry(['start', '--from', ctx.images, '--name', name, '--json']);
          const out = JSON.parse(stdout);
          return { commandMs, restoreMs: out.containers[0].restoreMs, netns: out.containers[0].netns.mode };
        }
        const t0 = Date.now();
        const started = await startFromImage(adapter, { imagesDir: ctx.images, name });
        return { commandMs: Date.now() - t0, restoreMs: started.restoreMs, netns: started.netns.mode };
      },
      async (result) => {
        const sum = await queryService(ctx.base.netnsPath, ctx.base.address, ctx.base.port, 'sum');
        if (sum.reply !== ctx.sum) throw new Error(`the restored table differs: ${sum.reply}, the original had ${ctx.sum}`);
        if (result.netns !== 'join') throw new Error(`expected the copy to join the original's namespace, got ${result.netns}`);
      },
    );
  } finally {
    await remove();
  }
}

// ------------------------------------------------------------------------------------------------ report

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const ms = (x) => (Number.isFinite(x) ? `${Math.round(x)} ms` : '-');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(1)}x` : '-');
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function hostFacts() {
  const tryRun = (file, args) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch {
      return '?';
    }
  };
  return {
    kernel: os.release(),
    cpu: `${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} cores)`,
    memory: `${Math.round(os.totalmem() / 1024 ** 3)} GiB`,
    criu: tryRun('criu', ['--version']).split('\n')[0],
    runc: tryRun('runc', ['--version']).split('\n')[0],
    node: process.version,
  };
}

function renderMarkdown(r) {
  const lines = [];
  const push = (...l) => lines.push(...l);
  push(
    '# Fast start: booting vs starting from a checkpoint image',
    '',
    `Generated by \`npm run bench:fast-start\` (bench/fast-start-bench.js) on ${r.finishedAt}; edit the generator, not this file.`,
    `Command: \`node bench/fast-start-bench.js${r.options.argv.length ? ` ${r.options.argv.join(' ')}` : ''}\``,
    '',
    `The service (fixtures/slow-start.c) builds a ${r.options.tableMib} MiB table for ${r.options.initMs} ms before it listens, then answers`,
    'lookups from it over TCP. It is booted once and checkpointed once it answers; then each round times, in rotating',
    'order, a fresh boot and two starts from that image, from the moment the command starts until a probe in the',
    "container's network namespace gets a correct answer (the entry is checked against the table's definition, and",
    "a restored copy's whole table against the original's checksum).",
    '',
    '| method | what is timed | median | min | max | speed-up vs boot (median) |',
    '|---|---|---:|---:|---:|---:|',
  );
  const what = {
    boot: '`runc run -d` of a fresh container until it answers',
    'ferry start': '`ferry start --from IMAGE --name N` (CLI, Node start-up included) until it answers',
    startFromImage: '`startFromImage()` from @ferry/core in the benchmark process until it answers',
  };
  for (const m of METHODS) {
    const s = r.summary[m];
    push(`| ${m} | ${what[m]} | ${ms(s.median)} | ${ms(s.min)} | ${ms(s.max)} | ${m === 'boot' ? '1.0x' : ratio(s.speedup)} |`);
  }
  push(
    '',
    `Speed-up = median boot time / median time of the method. Per-round ratios (boot / method of the same round):`,
    `ferry start ${r.summary['ferry start'].roundRatios.map(ratio).join(', ') || '-'}; startFromImage ${r.summary.startFromImage.roundRatios.map(ratio).join(', ') || '-'}.`,
    '',
    '## Every trial',
    '',
    '| round | method | until it answers | command returned after | runtime restore (runc + CRIU) |',
    '|---:|---|---:|---:|---:|',
  );
  for (const t of r.trials) {
    push(`| ${t.round} | ${t.method} | ${t.error ? `failed: ${t.error.replace(/\|/g, '/')}` : ms(t.ms)} | ${ms(t.commandMs)} | ${ms(t.restoreMs)} |`);
  }
  push(
    '',
    '## Set-up',
    '',
    `- Image: ${mib(r.image.bytes)} (${r.image.pagesWritten} pages), written by \`runc checkpoint\` in ${ms(r.image.dumpMs)} (frozen ${ms(r.image.frozenMs)}),`,
    `  in ${WORK_PARENT}; it stays in the page cache between starts (a cold start reads it from disk first).`,
    `- The first boot, which the image was taken of, answered after ${ms(r.baseBootMs)}; its table checksum: \`${r.sum}\`.`,
    '- Every container runs in its own PID, mount, IPC and UTS namespaces; starts from the image join the original',
    "  container's network namespace (it is stopped), a boot gets a fresh one made before the clock starts.",
    '- A restored copy is the booted service frozen in time: the same table, the same counters, the same PRNG state.',
    '  Anything that must differ per copy (a random id, a clock-based token) must be re-created after the restore.',
    `- Host: ${r.host.kernel}, ${r.host.cpu}, ${r.host.memory}; ${r.host.criu}; ${r.host.runc}; Node ${r.host.node}.`,
    '  The machine is shared with other work: compare the rows of one run with each other.',
    '',
  );
  if (r.failures.length) push('## Failed trials', '', ...r.failures.map((f) => `- round ${f.round}, ${f.method}: ${f.error}`), '');
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------------ main

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw Object.assign(new Error('the benchmark needs root (runc, CRIU, network namespaces)'), { exitCode: 2 });
  const tag = `fsb${Math.random().toString(36).slice(2, 6)}`;
  fs.mkdirSync(WORK_PARENT, { recursive: true, mode: 0o700 });
  const work = fs.mkdtempSync(path.join(WORK_PARENT, `${tag}-`));
  later(`work directory ${work}`, () => fs.rmSync(work, { recursive: true, force: true }));
  const images = path.join(work, 'image');
  const log = (text) => process.stderr.write(`${text}\n`);

  log(`fast-start bench: table ${options.tableMib} MiB, init ${options.initMs} ms, ${options.runs} rounds`);
  const base = await prepareSlowStartContainer({ name: `${tag}-base`, tableMib: options.tableMib, initMs: options.initMs });
  later(`container ${base.name}`, () => base.stop());
  const baseBoot = await timeUntilAnswer(base.netnsPath, base.address, base.port, async () => {
    await base.run();
    return {};
  });
  const sum = (await queryService(base.netnsPath, base.address, base.port, 'sum')).reply;
  if (!/ ok$/.test(sum)) throw new Error(`the booted service's table does not check out: ${sum}`);
  log(`  booted the original in ${ms(baseBoot.ms)}; checkpointing it`);
  const checkpoint = await adapter.checkpoint({ runtime: 'runc', id: base.name }, { imagesDir: images });
  const ctx = { ...options, base, images, sum };
  const image = {
    bytes: await imageDirBytes(images),
    dumpMs: checkpoint.stats.totalMs,
    frozenMs: checkpoint.stats.frozenMs,
    pagesWritten: checkpoint.stats.pagesWritten,
  };
  log(`  image ${mib(image.bytes)} in ${ms(image.dumpMs)}`);

  const trial = (method, round) => {
    const name = `${tag}-${round}-${method === 'boot' ? 'boot' : method === 'ferry start' ? 'cli' : 'lib'}`;
    if (method === 'boot') return bootTrial(ctx, name);
    return restoreTrial(ctx, name, method === 'ferry start' ? 'cli' : 'lib');
  };
  // Warm-up, not counted: the first Node start of the CLI reads its modules from disk.
  log('  warm-up: one ferry start and one startFromImage');
  await trial('ferry start', 'w');
  await trial('startFromImage', 'w');

  const trials = [];
  for (let round = 1; round <= options.runs && !interrupted; round++) {
    const order = METHODS.map((_, i) => METHODS[(i + round - 1) % METHODS.length]);
    for (const method of order) {
      if (interrupted) break;
      try {
        const t = await trial(method, round);
        trials.push({ round, method, ...t });
        log(`  round ${round} ${method.padEnd(14)} ${ms(t.ms).padStart(8)}`);
      } catch (err) {
        trials.push({ round, method, error: err.message.split('\n')[0] });
        log(`  round ${round} ${method.padEnd(14)} FAILED: ${err.message}`);
      }
    }
  }

  const ok = (m) => trials.filter((t) => t.method === m && !t.error);
  const bootMedian = median(ok('boot').map((t) => t.ms));
  const summary = {};
  for (const m of METHODS) {
    const xs = ok(m).map((t) => t.ms);
    const roundRatios = [];
    for (let round = 1; round <= options.runs; round++) {
      const b = ok('boot').find((t) => t.round === round);
      const x = ok(m).find((t) => t.round === round);
      if (b && x) roundRatios.push(b.ms / x.ms);
    }
    summary[m] = { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), speedup: bootMedian / median(xs), roundRatios, n: xs.length };
  }
  const failures = trials.filter((t) => t.error);
  const result = { options, host: hostFacts(), finishedAt: new Date().toISOString(), image, baseBootMs: baseBoot.ms, sum, summary, trials, failures };
  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  fs.writeFileSync(options.out, renderMarkdown(result));
  if (options.jsonOut) fs.writeFileSync(options.jsonOut, `${JSON.stringify(result, null, 2)}\n`);
  log(`\nboot ${ms(summary.boot.median)}, ferry start ${ms(summary['ferry start'].median)} (${ratio(summary['ferry start'].speedup)}), startFromImage ${ms(summary.startFromImage.median)} (${ratio(summary.startFromImage.speedup)})`);
  log(`results in ${options.out}${options.jsonOut ? ` and ${options.jsonOut}` : ''}`);
  return interrupted ? 130 : failures.length ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
    void cleanAll().then(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanAll();
    process.exit(code);
  })
  .catch(async (err) => {
    process.stderr.write(`bench: ${err.message}\n`);
    await cleanAll();
    process.exit(err.exitCode ?? 1);
  });
