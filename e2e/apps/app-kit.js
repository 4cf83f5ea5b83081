'use strict';
/**
 * What the application recipes (catalog/*.js) share: waiting for a server, running a load tool from the
 * application's own rootfs on the LAN until it is told to stop, and small Node clients on the LAN for protocols whose
 * Debian package ships no load tool (clients/*.js).
 */
const { spawn, spawnSync } = require('node:child_process');
const { join } = require('node:path');
const { collect, runOnLan, spawnOnLan } = require('./sandbox-access');

const CLIENTS = join(__dirname, 'clients');

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` (sync or async, truthy = done) until it holds; the last failure is in the error. */
async function waitUntil(what, probe, timeoutMs = 60_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

/** argv for a Node script from clients/ on the LAN (the machine's node, the LAN's network namespace only). */
function lanNodeArgv(sb, script, args) {
  return ['nsenter', `--net=${sb.lanNetns}`, process.execPath, join(CLIENTS, script), ...args];
}

/** Runs clients/SCRIPT on the LAN to its end; its last stdout line is JSON. */
function lanNode(sb, script, args, timeoutMs = 60_000) {
  const [file, ...rest] = lanNodeArgv(sb, script, args);
  const r = spawnSync(file, rest, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}');
}

/** A TCP connect to ADDRESS:PORT from the LAN succeeds. */
function tcpOpen(sb, address, port) {
  return lanNode(sb, 'tcp-probe.js', [address, String(port)], 10_000).open === true;
}

/**
 * A load that runs until stopped: `done` settles with what the tool reported. SIGINT first (tools that print a
 * summary on it), SIGKILL after `killAfterMs`.
 * @param {import('node:child_process').ChildProcess} child
 */
function stoppable(child, killAfterMs = 30_000) {
  const done = collect(child);
  let timer;
  done.finally(() => clearTimeout(timer));
  return {
    done,
    stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
      return done;
    },
  };
}

/** A load tool from the application's rootfs on the LAN (chroot, sandbox-access.js). */
function lanTool(sb, rootfs, argv) {
  return stoppable(spawnOnLan(sb, rootfs, argv));
}

/** A Node client from clients/ on the LAN that runs until SIGTERM, then prints its JSON result. */
function lanNodeLoad(sb, script, args) {
  const [file, ...rest] = lanNodeArgv(sb, script, args);
  const load = stoppable(spawn(file, rest, { stdio: ['ignore', 'pipe', 'pipe'] }));
  // Both hand over the parsed last line: stop() used to resolve to the bare output, and its callers saw no result.
  const parsed = (r) => {
    try {
      return { ...r, result: JSON.parse(r.stdout.trim().split('\n').at(-1) || 'null') };
    } catch {
      return { ...r, result: null, stderr: `${r.stderr}\nstdout: ${r.stdout.slice(-300)}` };
    }
  };
  return {
    done: load.done.then(parsed),
    stop: () => load.stop('SIGTERM').then(parsed),
  };
}

/**
 * A load of back-to-back rounds of a tool that runs a fixed amount (pgbench -T, redis-benchmark -n), for tools
 * that print no report when interrupted: stop() lets the round under way finish, then hands over every round's
 * run. A failed round ends the load; so does a round that outlives `roundTimeoutMs` (a server that stopped
 * answering: the tool would wait for ever), killed and reported as failed.
 * @param {() => { done: Promise<{ status: number|null }>, stop: (signal?: string) => Promise<unknown> }} startRound
 */
function rounds(startRound, roundTimeoutMs = 120_000) {
  let stopping = false;
  const runs = [];
  const loop = (async () => {
    while (!stopping) {
      const round = startRound();
      const timer = setTimeout(() => round.stop('SIGKILL'), roundTimeoutMs);
      const r = await round.done.finally(() => clearTimeout(timer));
      runs.push(r);
      if (r.status !== 0) break;
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
      return runs;
    },
  };
}

module.exports = { sleep, rounds, waitUntil, lanNode, tcpOpen, stoppable, lanTool, lanNodeLoad, runOnLan };
