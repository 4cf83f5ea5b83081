#!/usr/bin/env node
'use strict';
/**
 * The source half of bench/pages-bench.js, run inside sandbox host h1's network namespace (so that it reaches h2's
 * sshd over the shaped link). One JSON object per line on stdout:
 *
 *   ferry mode:  the workload dumped lazily in a private netns and held frozen by ferry; its pages served from the
 *                frozen memory over SSH (direct-streamlocal to the relay's link.sock on h2) until the relay says done;
 *                then the lazy dump ended through its own page server.
 *                {"ready": {imagesDir, stateFile, pid}}  ...  {"served": {gets, bytesSent}}  {"ended": true}
 *   criu mode:   the workload and `criu dump --lazy-pages --address H1 --port P` in h1's own namespace: CRIU's page
 *                server listens on h1's address (the path ferry replaces, measured for comparison).
 *                {"ready": {...}}  ...  {"ended": {code}}
 *
 *   node bench/pages-bench-source.js --mode ferry|criu --dir DIR --mib N --migration ID --relay-dir R
 *       --h2 ADDR --key FILE --known-hosts FILE [--address H1 --port P]
 */
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');
const core = require(path.join(ROOT, 'packages/core/dist/index.js'));
const testing = require(path.join(ROOT, 'packages/core/dist/testing.js'));
const migrate = require(path.join(ROOT, 'packages/migrate/dist/index.js'));

const { values: o } = parseArgs({
  options: {
    mode: { type: 'string' }, dir: { type: 'string' }, mib: { type: 'string' }, migration: { type: 'string' },
    'relay-dir': { type: 'string' }, h2: { type: 'string' }, key: { type: 'string' }, 'known-hosts': { type: 'string' },
    address: { type: 'string' }, port: { type: 'string' },
  },
});
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
/** CPU ms of this process and of its children that have been waited for (criu dump in criu mode). */
function cpuMs() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = 1000 / 100; // USER_HZ
  return { self: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick };
}

async function ferryMode() {
  const src = await testing.startLazySource({ dir: o.dir, memMib: Number(o.mib) });
  let before;
  try {
    await src.ready;
    await migrate.holdFrozen(src.freezerPath);
    const memory = await migrate.FrozenSourceMemory.open({ initPid: src.pid, freezerPath: src.freezerPath });
    say({ ready: { imagesDir: src.imagesDir, stateFile: src.stateFile, pid: src.pid, cpu: cpuMs() } });
    const destination = { name: 'h2', address: o.h2, port: 22, user: 'root', identityFiles: [o.key], knownHostsFiles: [o['known-hosts']] };
    const connection = await migrate.SshConnection.connect({ destination });
    const served = await migrate.serveSourcePages({
      migrationId: o.migration,
      memory,
      dial: () => migrate.dialRelayOverSsh(connection, o['relay-dir']),
      concurrency: 8,
    });
    say({ served });
    connection.close();
    await migrate.finishLazyDump({ netns: src.netns, port: testing.LAZY_SOURCE_PORT, freezerPath: src.freezerPath });
    say({ ended: true, cpu: cpuMs() });
  } finally {
    await src.stop();
  }
}

async function criuMode() {
  // The workload in h1's own netns (CRIU dumps it from there), in its own PID namespace.
  const stateFile = path.join(o.dir, 'state');
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const binary = testing.buildFixture('workload');
  const launcher = spawn('unshare', ['--pid', '--fork', 'setsid', binary, ...testing.workloadArgs({ stateFile, memMib: Number(o.mib) })], { stdio: 'ignore', detached: true });
  const pid = await testing.waitFor('the workload', () => {
    try {
      const child = Number(fs.readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim().split(' ')[0]);
      return child > 0 ? child : undefined;
    } catch {
      return undefined;
    }
  });
  try {
    await testing.waitForCounter(stateFile, 2, 15_000 + Number(o.mib) * 60);
    const imagesDir = core.createImageDir(path.join(o.dir, 'images'));
    const workDir = path.join(o.dir, 'work');
    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const statusPath = path.join(workDir, 'status');
    const statusFd = fs.openSync(statusPath, 'w', 0o600);
    const dump = spawn('criu', ['dump', '-t', String(pid), '-D', imagesDir, '-W', workDir, '--lazy-pages', '--address', o.address, '--port', o.port, '--status-fd', '3', '-o', 'dump.log', '-v4'], { stdio: ['ignore', 'ignore', 'ignore', statusFd] });
    fs.closeSync(statusFd);
    const exited = new Promise((resolve) => dump.once('exit', (code) => resolve(code)));
    await testing.waitFor('the lazy dump', () => fs.statSync(statusPath).size > 0, 120_000);
    say({ ready: { imagesDir, stateFile, pid, cpu: cpuMs() } });
    const code = await exited;
    say({ ended: { code }, cpu: cpuMs() });
  } finally {
    testing.killQuietly(pid, launcher.pid);
  }
}

(o.mode === 'ferry' ? ferryMode() : criuMode()).then(
  () => process.exit(0),
  (error) => {
    say({ error: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  },
);
