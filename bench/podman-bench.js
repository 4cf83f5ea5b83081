'use strict';
/**
 * The benchmark's Podman rows (called by bench/migration-bench.js in the same run and sandbox, or on their own:
 * `node bench/podman-bench.js --size 256 --runs 1`, which brings up a sandbox of its own). A Podman container running
 * the workload fixture (--network none) moves from h1 to h2 with `ferry migrate` and with Podman's own
 * checkpoint-copy-restore path (bench/podman-own-migrate.sh: `podman container checkpoint --export`, cat | ssh,
 * `podman container restore --import`), the two taking turns. Each sandbox host has its own Podman storage
 * (scripts/sandbox-hosts.sh). The image is imported on both hosts first, so neither method pays for carrying it.
 * Downtime is each method's own freeze→running figure; the workload's memory is checked on h2 after every move.
 */
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const { buildTestRootfs } = require('@ferry/core/testing');
const { runContainerTrials, fmtMs, fmtRatio, sizeLabel } = require('./container-trials');

const IMAGE = 'localhost/ferry-pd-bench:1';

/** What the Podman rows' trials differ in (bench/container-trials.js). */
const PODMAN_TRIALS = {
  label: 'Podman',
  cli: 'podman',
  image: IMAGE,
  ferryMethod: 'ferry podman',
  ownMethod: 'podman checkpoint',
  ownScript: path.join(__dirname, 'podman-own-migrate.sh'),
  ownFailedCode: 'PODMAN_FAILED',
  namePrefix: 'pdb',
  countingTries: 150,
  ferryRef: (name) => `podman:${name}`,
  removeArgv: (name) => ['rm', '-f', '--time', '0', name],
  logRow: (row) => `${sizeLabel(row.sizeMib)} run ${row.run} ${row.warmup ? 'warm-up ' : ''}${row.method}: ${row.error ? `FAILED ${row.error.code}: ${String(row.error.message).slice(0, 200)}` : `freeze→running ${row.downtimeMs} ms, total ${row.totalMs} ms, ${((row.bytesSent ?? 0) / 2 ** 20).toFixed(1)} MiB, memory ${row.memory}, phases ${JSON.stringify(row.phasesMs)}`}`,
};

/** ctx: { sizes, runs, dirtyPercent, sshConfig, hostsFile, onHost(host, argv, {input, timeoutMs}), log, interrupted }. */
async function runPodmanBench(ctx) {
  const tar = spawnSync('tar', ['-C', buildTestRootfs(), '-c', '.'], { maxBuffer: 256 << 20 });
  const imported = await ctx.onHost('h1', ['podman', 'import', '-q', '-', IMAGE], { input: tar.stdout });
  if (imported.status !== 0) throw new Error(`podman import on h1 failed: ${imported.stderr}`);
  // The same image id on h2 (Podman's own import looks the image up by the id in config.dump): save | load.
  const saved = await ctx.onHost('h1', ['podman', 'save', '--format', 'docker-archive', IMAGE], { binary: true });
  const loaded = await ctx.onHost('h2', ['podman', 'load', '-q'], { input: saved.stdoutBuffer });
  if (saved.status !== 0 || loaded.status !== 0) throw new Error(`podman save | load failed: ${saved.stderr} ${loaded.stderr}`);
  return runContainerTrials(ctx, PODMAN_TRIALS);
}

/** The markdown section of the Podman rows. */
function renderPodmanSection(podman) {
  if (!podman) return '';
  if (podman.error) return `## Podman containers\n\nNot measured: ${podman.error}\n`;
  const lines = podman.summary.map((s) =>
    s.succeeded
      ? `| ${sizeLabel(s.sizeMib)} | ${s.method} | ${fmtMs(s.downtimeMs)} | ${fmtRatio(s.downtimeRatio)} | ${fmtMs(s.totalMs)} | ${((s.bytesSent ?? 0) / 2 ** 20).toFixed(1)} | ${s.verified}/${s.succeeded} | ${Object.entries(s.phasesMs).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')} |`
      : `| ${sizeLabel(s.sizeMib)} | ${s.method} | failed ${s.runs}/${s.runs} | | | | | ${s.errors.join('; ').slice(0, 200)} |`,
  );
  return `## Podman containers

The same sandbox hosts, each with its own Podman 4.3 storage (runc, cgroupfs, vfs), unshaped link, image on both
hosts beforehand. **ferry podman**: \`ferry migrate podman:NAME --to h2\` (runc dumps the paused container, memory
streamed to h2's page server, restored there by \`podman container restore --import\` of an archive ferry packs).
**podman checkpoint**: Podman's own path (bench/podman-own-migrate.sh: \`checkpoint --export\` with zstd, cat | ssh,
\`restore --import\`). Methods take turns; medians; memory checked by the workload on h2 after each move.

| size | method | freeze→running ms | ratio vs podman checkpoint | total ms | MiB sent | memory ok | phases (ms) |
|---|---|--:|--:|--:|--:|:-:|---|
${lines.join('\n')}
`;
}

module.exports = { runPodmanBench, renderPodmanSection };

/** Standalone: a sandbox of its own (prefix FERRY_E2E_PREFIX or "pb"), one size, the section printed as markdown. */
if (require.main === module) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const name = `${process.env.FERRY_E2E_PREFIX ?? 'pb'}b`;
  const dir = `/run/ferry-sandbox-${name}`;
  const script = path.join(__dirname, '..', 'scripts', 'sandbox-hosts.sh');
  const env = { ...process.env, FERRY_SANDBOX_DIR: dir, FERRY_SANDBOX_NAME: name };
  const onHost = (host, argv, { input, timeoutMs = 120_000 } = {}) =>
    new Promise((resolve) => {
      const child = spawn('bash', [script, 'exec', host, '--', ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out = [];
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout.on('data', (c) => out.push(c));
      child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? undefined);
      child.on('close', (status) => {
        clearTimeout(timer);
        const stdoutBuffer = Buffer.concat(out);
        resolve({ status, stdout: stdoutBuffer.toString('utf8'), stdoutBuffer, stderr });
      });
    });
  const sandbox = (...a) => spawnSync('bash', [script, ...a], { env, stdio: ['ignore', 'inherit', 'inherit'], timeout: 180_000 });
  (async () => {
    if (sandbox('up').status !== 0) throw new Error('sandbox up failed');
    try {
      const ctx = { sizes: [Number(arg('--size', '256'))], runs: Number(arg('--runs', '1')), dirtyPercent: 1, sshConfig: `${dir}/ssh_config`, hostsFile: `${dir}/hosts.yaml`, onHost, log: (l) => console.error(l), interrupted: () => false };
      const result = await runPodmanBench(ctx);
      process.stdout.write(`${renderPodmanSection(result)}\n${JSON.stringify(result.summary)}\n`);
    } finally {
      sandbox('down');
    }
  })().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
