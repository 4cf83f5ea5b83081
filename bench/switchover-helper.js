#!/usr/bin/env node
'use strict';
/**
 * The destination side of bench/switchover-bench.js: runs inside a sandbox host (root) and plays the part of the
 * network wiring that ferry does not have yet (docs/network-switchover.md), with the core package's own building
 * blocks (createNetns, PacketHold). Commands on stdin, one per line, "ID COMMAND ARGS..."; one JSON line out per
 * command when it is done, with its ID:
 *
 *   prepare NAME ADDRESS/PREFIX MAC  create /run/netns/ferry-ct-NAME as the runc adapter would (eth0 with that
 *                                    address and MAC, plugged into the LAN bridge with its bridge end down) and
 *                                    hold its traffic; the adapter's restore then finds the namespace and uses it
 *   raise                            bring the bridge end up (the source was fenced: the hold catches what comes)
 *   watch NAME hold|nohold           wait for the adapter to create /run/netns/ferry-ct-NAME, then (hold) hold its
 *                                    traffic and bring its bridge end up at once, before the restore
 *   neigh NAME IP MAC                wait for the adapter to create the namespace and to raise its bridge end (after
 *                                    the restore), then give it the neighbour entry IP -> MAC at once: what the
 *                                    restored socket queued behind an unanswered ARP request leaves without waiting
 *                                    for the neighbour layer's 1 s retry
 *   release                          release the hold; prints its result
 *   quit
 *
 *   node bench/switchover-helper.js LAN_NETNS_PATH BRIDGE
 */
const { execFile, spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { promisify } = require('node:util');

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const core = require(path.join(ROOT, 'packages/core/dist/index.js'));
const { createNetns, netnsPath } = require(path.join(ROOT, 'packages/core/dist/runtime/runc-netns.js'));

const [lanPath, bridge] = process.argv.slice(2);
const tools = { ipPath: 'ip', nsenterPath: 'nsenter' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let hold;
let port; // the bridge end of the destination's eth0, in the LAN namespace
const t0 = Date.now();

const say = (object) => process.stdout.write(`${JSON.stringify({ atMs: Date.now(), ...object })}\n`);

async function holdTraffic(nsPath) {
  hold = await core.holdNetnsTraffic({ netnsPath: nsPath, searchPath: process.env.PATH });
}

/** The LAN-side name of the veth whose other end is eth0 in nsPath. */
async function bridgeEndOf(nsPath) {
  const { stdout } = await run('nsenter', [`--net=${nsPath}`, 'ip', '-j', 'link', 'show', 'eth0']);
  const peerIndex = JSON.parse(stdout)[0].link_index;
  const { stdout: lan } = await run('nsenter', [`--net=${lanPath}`, 'ip', '-j', 'link', 'show']);
  return JSON.parse(lan).find((l) => l.ifindex === peerIndex)?.ifname;
}

async function raise() {
  await run('nsenter', [`--net=${lanPath}`, 'ip', 'link', 'set', port, 'up']);
}

const commands = {
  async prepare(name, address, mac) {
    const nsName = `ferry-ct-${name}`;
    await createNetns(tools, nsName, [{ ifname: 'eth0', mac, addresses: [{ ifname: 'eth0', family: 'inet', address }] }], { netnsPath: lanPath, bridge }, (peers) => (port = peers[0]));
    await holdTraffic(netnsPath(nsName));
    return { prepared: nsName, port };
  },
  async raise() {
    await raise();
    return { raised: port };
  },
  async watch(name, mode) {
    const nsPath = netnsPath(`ferry-ct-${name}`);
    for (;;) {
      if (existsSync(nsPath)) {
        port = await bridgeEndOf(nsPath).catch(() => undefined);
        if (port) break;
      }
      await sleep(2);
    }
    if (mode === 'hold') await holdTraffic(nsPath);
    await raise();
    return { watched: nsPath, port, held: mode === 'hold' };
  },
  async neigh(name, ip, mac) {
    const nsPath = netnsPath(`ferry-ct-${name}`);
    for (;;) {
      if (existsSync(nsPath)) {
        port = await bridgeEndOf(nsPath).catch(() => undefined);
        if (port) break;
      }
      await sleep(2);
    }
    // The adapter raises the bridge end once runc restore returns: watch for it rather than poll.
    const monitor = spawn('nsenter', [`--net=${lanPath}`, 'ip', '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const up = new Promise((resolve) => {
      let pending = '';
      monitor.stdout.setEncoding('utf8').on('data', (c) => {
        pending += c;
        if (pending.split('\n').some((l) => l.includes(`${port}@`) && l.includes('LOWER_UP'))) resolve();
      });
    });
    const { stdout } = await run('nsenter', [`--net=${lanPath}`, 'ip', '-j', 'link', 'show', port]);
    if (!JSON.parse(stdout)[0].flags.includes('LOWER_UP')) await up;
    monitor.kill();
    await run('nsenter', [`--net=${nsPath}`, 'ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', 'eth0', 'nud', 'reachable']);
    return { seeded: `${ip} ${mac}`, port };
  },
  async release() {
    const result = await hold.release();
    return { released: { ...result, first: result.first.slice(0, 6) } };
  },
  async quit() {
    if (hold && hold.state === 'holding') await hold.release();
    setImmediate(() => process.exit(0));
    return { quit: Date.now() - t0 };
  },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [id, command, ...args] = line.trim().split(/\s+/);
  const fn = commands[command];
  if (!fn) return say({ id, error: `unknown command ${command}` });
  fn(...args).then((o) => say({ id, ...o }), (err) => say({ id, error: err.message, command }));
});
say({ ready: true });
