'use strict';
/**
 * The benchmark's Docker rows (called by bench/migration-bench.js in the same run, same sandbox): a Docker container
 * running the workload fixture (--network none) moves from h1 to h2 with `ferry migrate` and with Docker's own
 * checkpoint-copy-restore path (bench/docker-own-migrate.sh: `docker checkpoint create`, tar | ssh, `docker start
 * --checkpoint`), the two taking turns. Each host runs a dockerd of its own for the duration (own data root, exec
 * root, socket /run/ferry/docker.sock, cgroup parent), stopped and cleaned at the end. The image is loaded on both
 * hosts first (the same image id on both), so that neither method pays for carrying it.
 * No client probe: with --network none nothing outside can connect (see docs/docker.md); downtime is each method's
 * own freeze→running figure, and the workload's memory is checked on h2 after every move.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { buildTestRootfs, descendants, dockerdArgv, dockerdPaths, removeCgroupParent } = require('@ferry/core/testing');
const { runContainerTrials, fmtMs, fmtRatio, sizeLabel } = require('./container-trials');

const DOCKER = '/usr/bin/docker';
const DOCKER_SOCKET = '/run/ferry/docker.sock';
const IMAGE = 'ferry-dk-bench:1';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What the Docker rows' trials differ in (bench/container-trials.js). */
const DOCKER_TRIALS = {
  label: 'Docker',
  cli: DOCKER,
  image: IMAGE,
  ferryMethod: 'ferry docker',
  ownMethod: 'docker checkpoint',
  ownScript: path.join(__dirname, 'docker-own-migrate.sh'),
  ownFailedCode: 'DOCKER_FAILED',
  namePrefix: 'dkb',
  countingTries: 100,
  ferryRef: (name) => name,
  removeArgv: (name) => ['rm', '-f', name],
  logRow: consoleRow,
};

/**
 * Runs the Docker trials. ctx: { sizes, runs, dirtyPercent, sandboxScript, sandboxName, sandboxDir, sshConfig,
 * hostsFile, env, onHost(host, argv, options) -> {status, stdout, stderr}, log(line), interrupted() }.
 * Returns { rows, summary, skipped? }.
 */
async function runDockerBench(ctx) {
  const daemons = [];
  try {
    for (const host of ['h1', 'h2']) daemons.push(await startDockerd(ctx, host));
    await loadImage(ctx);
    return await runContainerTrials(ctx, DOCKER_TRIALS);
  } finally {
    for (const d of daemons.reverse()) await d.stop().catch((err) => ctx.log(`bench: stopping dockerd on ${d.host}: ${err.message}`));
  }
}

async function startDockerd(ctx, host) {
  const paths = dockerdPaths(`${ctx.sandboxName}${host}`, { run: '/run/ferry', lib: '/var/lib/ferry', socket: DOCKER_SOCKET });
  const runDir = path.dirname(paths.execRoot);
  const prep = await ctx.onHost(host, ['sh', '-c', 'mkdir -p -m 0700 "$1" && echo "{}" > "$2"', 'sh', runDir, paths.configFile]);
  if (prep.status !== 0) throw new Error(`cannot prepare ${runDir} on ${host}: ${prep.stderr}`);
  const logPath = path.join(ctx.sandboxDir, host, 'dockerd.log'); // removed with the sandbox
  const log = fs.openSync(logPath, 'a');
  const nsenter = spawn('bash', [ctx.sandboxScript, 'exec', host, '--', ...dockerdArgv(paths)], { env: ctx.env, stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  nsenter.unref();
  const cmdline = (p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  const alive = (p) => {
    try {
      return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  let pid;
  const stop = async () => {
    const ids = (await ctx.onHost(host, [DOCKER, 'ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await ctx.onHost(host, [DOCKER, 'rm', '-f', ...ids]);
    if (pid && cmdline(pid).includes(paths.dataRoot)) {
      const family = descendants(pid);
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 200 && alive(pid); i++) await sleep(100);
      for (const p of [pid, ...family]) if (alive(p)) process.kill(p, 'SIGKILL');
      for (let i = 0; i < 100 && [pid, ...family].some(alive); i++) await sleep(100);
    }
    await ctx.onHost(host, ['rm', '-rf', paths.dataRoot, runDir]);
    removeCgroupParent(paths.cgroupParent);
  };
  for (let i = 0; i < 200 && !pid; i++) {
    pid = descendants(nsenter.pid).find((p) => cmdline(p).includes(paths.dataRoot));
    if (!pid) await sleep(100);
  }
  for (let i = 0; i < 200; i++) {
    if ((await ctx.onHost(host, [DOCKER, 'version'], { timeoutMs: 10_000 })).status === 0) return { host, stop };
    await sleep(300);
  }
  await stop();
  throw new Error(`dockerd on ${host} did not answer (log: ${logPath})`);
}

/** The test rootfs imported on h1, then saved and loaded on h2: the same image id on both hosts. */
async function loadImage(ctx) {
  const tar = spawnSync('tar', ['-C', buildTestRootfs(), '-c', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar of the test rootfs failed: ${tar.stderr}`);
  const imported = await ctx.onHost('h1', [DOCKER, 'import', '-', IMAGE], { input: tar.stdout });
  if (imported.status !== 0) throw new Error(`docker import on h1 failed: ${imported.stderr}`);
  const file = `/var/lib/ferry/${IMAGE.replace(/[:/]/g, '-')}.tar`;
  const saved = await ctx.onHost('h1', [DOCKER, 'save', '-o', file, IMAGE]);
  if (saved.status !== 0) throw new Error(`docker save on h1 failed: ${saved.stderr}`);
  // h1's /var/lib/ferry is private to h1: the tar goes over through this process.
  const bytes = await ctx.onHost('h1', ['cat', file], { binary: true });
  await ctx.onHost('h1', ['rm', '-f', file]);
  const loaded = await ctx.onHost('h2', [DOCKER, 'load'], { input: bytes.stdoutBuffer });
  if (loaded.status !== 0) throw new Error(`docker load on h2 failed: ${loaded.stderr}`);
}

function consoleRow(r) {
  const what = `${sizeLabel(r.sizeMib).padStart(7)} docker   run ${String(r.run).padStart(2)} ${r.warmup ? 'warm-up ' : ''}${r.method}`;
  if (r.error) return `${what}: FAILED ${r.error.code}: ${String(r.error.message).split('\n')[0].slice(0, 200)}`;
  const phases = Object.entries(r.phasesMs ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  return `${what}: freeze→running ${r.downtimeMs} ms, total ${r.totalMs} ms, ${((r.bytesSent ?? 0) / 2 ** 20).toFixed(1)} MiB, memory ${r.memory}\n      phases: ${phases}`;
}

/** The markdown section of the Docker rows. */
function renderDockerSection(docker) {
  if (!docker) return '';
  if (docker.error) return `## Docker containers\n\nNot measured: ${docker.error}\n`;
  const { summary } = docker;
  const head =
    '| size | link | method | freeze→running ms | ratio vs docker checkpoint | total ms | total ratio | MiB sent | memory ok |\n' +
    '|---|---|---|--:|--:|--:|--:|--:|:-:|';
  const lines = summary.map((s) =>
    s.succeeded
      ? `| ${sizeLabel(s.sizeMib)} | unshaped | ${s.method} | ${fmtMs(s.downtimeMs)} | ${fmtRatio(s.downtimeRatio)} | ${fmtMs(s.totalMs)} | ${fmtRatio(s.totalRatio)} | ${((s.bytesSent ?? 0) / 2 ** 20).toFixed(1)} | ${s.verified}/${s.succeeded}${s.succeeded < s.runs ? ` (${s.runs - s.succeeded} failed)` : ''} |`
      : `| ${sizeLabel(s.sizeMib)} | unshaped | ${s.method} | failed ${s.runs}/${s.runs} | | | | | |`,
  );
  const phaseNames = [...new Set(summary.flatMap((s) => Object.keys(s.phasesMs)))];
  const phaseHead = `| size | method | ${phaseNames.join(' | ')} |\n|---|---|${phaseNames.map(() => '--:').join('|')}|`;
  const phaseLines = summary.filter((s) => s.succeeded).map((s) => `| ${sizeLabel(s.sizeMib)} | ${s.method} | ${phaseNames.map((p) => (s.phasesMs[p] === undefined ? '' : fmtMs(s.phasesMs[p]))).join(' | ')} |`);
  const failures = docker.rows.filter((r) => r.error && !r.warmup);
  return `## Docker containers

The same sandbox hosts, each running a dockerd of its own (vfs, --bridge=none), unshaped link. A Docker container
(\`--network none\`) running the workload fixture moves from h1 to h2 with **ferry docker** (\`ferry migrate NAME
--to h2\`: runc dumps the container's process tree directly, memory streamed to h2 while the dump runs, restored
by \`docker start --checkpoint\` there) and with **docker checkpoint**, Docker's own path scripted with the docker CLI
(bench/docker-own-migrate.sh: the container pre-created on h2, \`docker checkpoint create\`, tar | ssh into the new
container's checkpoint directory, \`docker start --checkpoint\`). The methods take turns; medians of the runs; the
image is on both hosts beforehand. No outside client: with \`--network none\` nothing can connect to the container,
so the downtime is each method's own freeze→running time. Memory is checked by the workload on h2 after each move.

${head}
${lines.join('\n')}

Where the time goes (medians, ms):

${phaseHead}
${phaseLines.join('\n')}
${failures.length ? `\nFailed trials: ${failures.map((r) => `${sizeLabel(r.sizeMib)} run ${r.run} ${r.method}: ${r.error.code}: ${String(r.error.message).replace(/\s+/g, ' ').slice(0, 300)}`).join('; ')}\n` : ''}`;
}

module.exports = { runDockerBench, renderDockerSection };
