#!/usr/bin/env node
'use strict';
/**
 * Post-copy page transfer between the two sandbox hosts over a shaped link: ferry's page path (pages read from the
 * frozen source, served over SSH to the destination relay, which pulls in large batches with several requests in
 * flight) against CRIU's own (the lazy-pages daemon asking the dump's page server over TCP, one request at a time),
 * side by side in one run, the methods taking turns. Root only; own sandbox instance (FERRY_BENCH_NAME, default
 * pgbench).
 *
 *   node bench/pages-bench.js [--mib 1024] [--link 1gbit] [--runs 3] [--out bench/results/pages.md]
 *
 * Per trial: a fresh workload on h1 (SIZE MiB), dumped lazily; its images copied to the destination; a lazy restore
 * on this machine whose daemon gets the pages from h1 over the link (CRIU: the daemon runs in h2's netns and
 * connects to h1's page server; ferry: the relay's link.sock is reached through h2's sshd); the time from the
 * restore's start until the daemon has every page; the restored copy's memory verified by the workload.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');
const SANDBOX_SCRIPT = path.join(ROOT, 'scripts', 'sandbox-hosts.sh');
const SOURCE = path.join(__dirname, 'pages-bench-source.js');
const NAME = process.env.FERRY_BENCH_NAME || 'pgbench';
const SANDBOX_DIR = `/run/ferry-sandbox-${NAME}`;
const H1 = '10.231.0.1';
const H2 = '10.231.0.2';
const CRIU_PORT = 27100;
const env = { ...process.env, FERRY_SANDBOX_NAME: NAME, FERRY_SANDBOX_DIR: SANDBOX_DIR };

const core = require(path.join(ROOT, 'packages/core/dist/index.js'));
const testing = require(path.join(ROOT, 'packages/core/dist/testing.js'));
const migrate = require(path.join(ROOT, 'packages/migrate/dist/index.js'));

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '1024' }, 'in-flight': { type: 'string', default: '16' }, 'batch-pages': { type: 'string', default: '256' }, methods: { type: 'string', default: 'ferry,criu' }, link: { type: 'string', default: '1gbit' }, runs: { type: 'string', default: '3' }, out: { type: 'string' }, help: { type: 'boolean' } },
});
if (values.help) {
  process.stdout.write('usage: node bench/pages-bench.js [--mib 1024] [--link 1gbit] [--runs 3] [--in-flight 16] [--batch-pages 256] [--out FILE]   (root; npm run bench:pages)\n');
  process.exit(0);
}
const MIB = Number(values.mib);
const METHODS = values.methods.split(',');
const RUNS = Number(values.runs);
const OUT = values.out ?? path.join(__dirname, 'results', 'pages.md');
const t0 = Date.now();
const log = (...a) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);

function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}
const sandbox = (...args) => run('bash', [SANDBOX_SCRIPT, ...args]);

/** Starts the source half inside h1's netns; resolves with its 'ready' line and a way to wait for more lines. */
function startSource(args) {
  const child = spawn('nsenter', [`--net=/run/netns/${NAME}-h1`, process.execPath, ...process.execArgv, SOURCE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const waiters = [];
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line);
    lines.push(msg);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const next = async (key) => {
    for (;;) {
      const found = lines.find((l) => key in l || 'error' in l);
      if (found) {
        if ('error' in found && !(key in found)) throw new Error(`source: ${found.error}\n${stderr}`);
        return key === 'ended' ? found : found[key];
      }
      const code = await Promise.race([new Promise((r) => waiters.push(r)), exited]);
      if (typeof code === 'number' && !lines.some((l) => key in l)) throw new Error(`source exited ${code} before "${key}"\n${stderr}`);
    }
  };
  return { child, next, exited };
}

function restoreLazily(imagesDir, workDir) {
  const pidfile = path.join(workDir, 'restored.pid');
  return run('criu', ['restore', '-D', imagesDir, '-W', workDir, '--lazy-pages', '-d', '--manage-cgroups=ignore', '--pidfile', pidfile, '-o', 'restore.log', '-v4']).then(() =>
    Number(fs.readFileSync(pidfile, 'utf8').trim()),
  );
}

async function lazyBytes(imagesDir) {
  return (await core.lazyRanges(imagesDir)).pages * 4096;
}

async function trialCriu(dir) {
  const src = startSource(['--mode', 'criu', '--dir', path.join(dir, 'src'), '--mib', String(MIB), '--address', H1, '--port', String(CRIU_PORT)]);
  let restored;
  let daemon;
  try {
    const ready = await src.next('ready');
    const imagesDir = path.join(dir, 'dst', 'images');
    fs.cpSync(ready.imagesDir, imagesDir, { recursive: true });
    const workDir = path.join(dir, 'dst', 'work');
    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const bytes = await lazyBytes(imagesDir);
    // The daemon in h2's network namespace, connecting to h1's page server over the link.
    daemon = spawn('nsenter', [`--net=/run/netns/${NAME}-h2`, 'criu', 'lazy-pages', '--page-server', '--address', H1, '--port', String(CRIU_PORT), '-D', imagesDir, '-W', workDir, '-o', 'lazy-pages.log', '-v4'], { stdio: 'ignore' });
    const daemonExit = new Promise((resolve) => daemon.once('exit', (code) => resolve(code)));
    await testing.waitFor('the daemon', () => fs.existsSync(path.join(workDir, 'lazy-pages.socket')), 30_000);
    const started = Date.now();
    restored = await restoreLazily(imagesDir, workDir);
    const restoreMs = Date.now() - started;
    const code = await daemonExit;
    const ms = Date.now() - started;
    if (code !== 0) throw new Error(`criu lazy-pages exited ${code}`);
    const verdict = await testing.verifyWorkloadMemory(restored, ready.stateFile, 120_000);
    const ended = await src.next('ended');
    // The source's serving CPU: CRIU's dump (page server) from when it was ready until it ended.
    const sourceCpuMs = ended.cpu.children - ready.cpu.children;
    return { method: 'criu', bytes, restoreMs, ms, verdict, sourceCpuMsPerMiB: sourceCpuMs / (bytes / 2 ** 20) };
  } finally {
    if (restored) testing.killQuietly(restored);
    if (daemon) testing.killQuietly(daemon.pid);
    testing.killQuietly(src.child.pid);
    await src.exited;
  }
}

async function trialFerry(dir, index) {
  const migrationId = `bench-${process.pid}-${index}`;
  const relayDir = path.join(dir, 'dst', 'relay');
  const src = startSource(['--mode', 'ferry', '--dir', path.join(dir, 'src'), '--mib', String(MIB), '--migration', migrationId, '--relay-dir', relayDir, '--h2', H2, '--key', path.join(SANDBOX_DIR, 'client_ed25519'), '--known-hosts', path.join(SANDBOX_DIR, 'known_hosts')]);
  let restored;
  let relay;
  try {
    const ready = await src.next('ready');
    const imagesDir = path.join(dir, 'dst', 'images');
    fs.cpSync(ready.imagesDir, imagesDir, { recursive: true });
    const restoreWork = path.join(dir, 'dst', 'restore');
    fs.mkdirSync(restoreWork, { recursive: true, mode: 0o700 });
    const bytes = await lazyBytes(imagesDir);
    const relayCpu = process.cpuUsage();
    relay = await migrate.PageRelay.start({ migrationId, dir: relayDir, imagesDir, restoreWorkDir: restoreWork, pull: { inFlight: Number(values['in-flight']), batchPages: Number(values['batch-pages']) } });
    // The source dials the relay's link.sock through h2's sshd by itself (it retries until the socket is there).
    const started = Date.now();
    restored = await restoreLazily(imagesDir, restoreWork);
    const restoreMs = Date.now() - started;
    const report = await relay.finished;
    const ms = Date.now() - started;
    await relay.sourceReleased;
    const relayUsage = process.cpuUsage(relayCpu);
    const verdict = await testing.verifyWorkloadMemory(restored, ready.stateFile, 120_000);
    const ended = await src.next('ended');
    const mib = bytes / 2 ** 20;
    return {
      method: 'ferry', bytes, restoreMs, ms, verdict, pullMs: report.pullMs, pullMiBps: report.pullMiBps, gets: report.pull.bulkGets + report.pull.urgentGets,
      daemonRequests: report.daemonRequests,
      // The source process (memory reads, framing, SSH encryption) and this process (the relay), per MiB.
      sourceCpuMsPerMiB: (ended.cpu.self - ready.cpu.self) / mib,
      relayCpuMsPerMiB: (relayUsage.user + relayUsage.system) / 1000 / mib,
    };
  } finally {
    if (restored) testing.killQuietly(restored);
    if (relay) {
      relay.killDaemon();
      relay.release();
    }
    testing.killQuietly(src.child.pid);
    await src.exited;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  if (process.getuid() !== 0) throw new Error('root only');
  log(`sandbox ${NAME}: up, link shaped to ${values.link}`);
  await sandbox('up');
  await sandbox('shape', values.link);
  const rateBits = Number(/^(\d+(?:\.\d+)?)/.exec(values.link)[1]) * ({ k: 1e3, m: 1e6, g: 1e9 }[(/([kmg])bit$/.exec(values.link) || [])[1]] || 1);
  const linkMiB = rateBits / 8 / 2 ** 20;
  const rows = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      const order = (r % 2 === 0 ? ['ferry', 'criu'] : ['criu', 'ferry']).filter((m) => METHODS.includes(m));
      for (const method of order) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ferry-pages-bench-${method}-`));
        try {
          log(`run ${r + 1}/${RUNS}: ${method}, ${MIB} MiB`);
          const row = method === 'ferry' ? await trialFerry(dir, r) : await trialCriu(dir);
          row.mibps = row.bytes / 2 ** 20 / (row.ms / 1000);
          row.run = r + 1;
          rows.push(row);
          log(`  ${method}: ${(row.bytes / 2 ** 20).toFixed(0)} MiB in ${row.ms} ms${row.pullMiBps ? ` (pull ${row.pullMiBps.toFixed(1)} MiB/s, ${row.gets} GETs)` : ''} = ${row.mibps.toFixed(1)} MiB/s (${((row.mibps / linkMiB) * 100).toFixed(0)}% of ${values.link}); restore ${row.restoreMs} ms; memory ${row.verdict}`);
        } catch (error) {
          rows.push({ method, run: r + 1, error: error.message });
          log(`  ${method} FAILED: ${error.message}`);
        } finally {
          testing.removeTestDir(dir);
        }
      }
    }
  } finally {
    await sandbox('shape', 'off').catch(() => undefined);
    await sandbox('down').catch(() => undefined);
  }
  const lines = [
    `# Post-copy page transfer: ferry's relay vs CRIU's page server`,
    '',
    `Generated by \`node bench/pages-bench.js --mib ${MIB} --link ${values.link} --runs ${RUNS}\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)} at the end; the machine is shared). The link between the sandbox hosts is shaped with tc tbf to ${values.link} (${linkMiB.toFixed(1)} MiB/s). Time: from the lazy restore's start until the lazy-pages daemon has every page. ferry's pages go through SSH (encrypted, ssh2 on the source, sshd on h2, to the relay's unix socket); CRIU's over plain TCP to a page server listening on h1's address (the path ferry replaces: anybody on the network can read or end it). CPU per MiB: the source process (ferry: reads, framing, encryption; CRIU: the dump's page server) and, for ferry, the destination process running the relay (sshd and the lazy-pages daemon not counted).`,
    '',
    '| method | run | lazy MiB | restore (frozen part) ms | all pages ms | MiB/s | % of link | source CPU ms/MiB | relay CPU ms/MiB | memory |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ...rows.map((r) =>
      r.error
        ? `| ${r.method} | ${r.run} | | | | | | | | FAILED: ${r.error.split('\n')[0]} |`
        : `| ${r.method} | ${r.run} | ${(r.bytes / 2 ** 20).toFixed(0)} | ${r.restoreMs} | ${r.ms} | ${r.mibps.toFixed(1)} | ${((r.mibps / linkMiB) * 100).toFixed(0)}% | ${r.sourceCpuMsPerMiB?.toFixed(1) ?? ''} | ${r.relayCpuMsPerMiB?.toFixed(1) ?? '(none)'} | ${r.verdict} |`,
    ),
    '',
    '| method | median MiB/s | median % of link | median all pages ms |',
    '|---|--:|--:|--:|',
    ...['ferry', 'criu'].map((m) => {
      const ok = rows.filter((r) => r.method === m && !r.error);
      if (!ok.length) return `| ${m} | | | |`;
      const mibps = median(ok.map((r) => r.mibps));
      return `| ${m} | ${mibps.toFixed(1)} | ${((mibps / linkMiB) * 100).toFixed(0)}% | ${median(ok.map((r) => r.ms)).toFixed(0)} |`;
    }),
    '',
  ];
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, lines.join('\n'));
  fs.writeFileSync(OUT.replace(/\.md$/, '.json'), JSON.stringify({ mib: MIB, link: values.link, runs: RUNS, rows }, null, 1));
  process.stdout.write(lines.join('\n'));
  return rows.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(`bench failed: ${error.stack || error}`);
    process.exit(1);
  },
);
