#!/usr/bin/env node
'use strict';
/**
 * Test containers on a sandbox host, for the e2e tests and the demo. Run it inside a host:
 *   scripts/sandbox-hosts.sh exec h1 -- node e2e/bin/container-ctl.js start NAME [--mem-mib N] [--dirty-pages-per-sec N]
 *     [--rootfs-copy DIR] [--rootfs-in-bundle] [--bind SRC:DST]
 *   ... run NAME --bundle DIR --address CIDR   (any bundle, e.g. an application's: e2e/apps/bundle.js)
 *   ... state NAME | verify NAME | remove NAME | remove-bundle NAME (after the test: the bundle `start` made)
 * It prints one JSON object. The network uplink comes from FERRY_NETNS_UPLINK (set by the sandbox's sshd and env).
 */
const { readFileSync, existsSync, readdirSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { parseNetnsUplink, RuncAdapter } = require('@ferry/core');
const { spawnSync } = require('node:child_process');
const { startRuncContainer, verifyWorkloadMemory, readWorkloadState, createNetns, deleteNetns, netnsTools, removeUnlessMounted } = require('@ferry/core/testing');

function option(args, name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

async function main() {
  const [command, name, ...rest] = process.argv.slice(2);
  if (!command || !name) throw new Error('usage: container-ctl.js start|state|verify|remove|remove-bundle NAME [options]');
  const uplink = process.env.FERRY_NETNS_UPLINK ? parseNetnsUplink(process.env.FERRY_NETNS_UPLINK) : undefined;
  const adapter = new RuncAdapter({ searchPath: process.env.PATH, netnsUplink: uplink });
  if (command === 'start') {
    const c = await startRuncContainer({
      name,
      memMib: Number(option(rest, 'mem-mib', '64')),
      dirtyPagesPerSec: Number(option(rest, 'dirty-pages-per-sec', '0')) || undefined,
      address: option(rest, 'address', '10.77.0.2/24'),
      port: Number(option(rest, 'port', '8080')),
      uplink,
      // --rootfs-copy DIR: the container's own rootfs at DIR (outside its bundle); --bind SRC:DST: a host directory.
      ...(option(rest, 'rootfs-copy') ? { rootfsCopy: option(rest, 'rootfs-copy') } : {}),
      // --rootfs-in-bundle: the rootfs copied into the bundle, config.json's root.path relative ("rootfs").
      ...(rest.includes('--rootfs-in-bundle') ? { rootfsInBundle: true } : {}),
      ...(option(rest, 'bind') ? { binds: [{ source: option(rest, 'bind').split(':')[0], destination: option(rest, 'bind').split(':')[1] }] } : {}),
    });
    return { name: c.name, bundle: c.bundle, netnsPath: c.netnsPath, address: c.address, port: c.port, stateFile: c.stateFile, pid: await c.pid() };
  }
  if (command === 'run') {
    // The bundle's config.json joins /run/netns/ferry-ct-NAME: made here, on the LAN uplink, then `runc run -d`
    // with stdio on /dev/null (runc hands them to the container) and runc's own messages in the bundle.
    const bundle = option(rest, 'bundle');
    const address = option(rest, 'address');
    if (!bundle || !address) throw new Error('run needs --bundle DIR and --address CIDR');
    const tools = netnsTools();
    await createNetns(tools, `ferry-ct-${name}`, [{ ifname: 'eth0', addresses: [{ ifname: 'eth0', family: 'inet', address }] }], uplink);
    const r = spawnSync('runc', ['--log', `${bundle}/runc.log`, '--log-format', 'json', 'run', '--detach', '--bundle', bundle, name], { stdio: 'ignore', timeout: 60_000 });
    if (r.status !== 0) {
      await deleteNetns(tools, `ferry-ct-${name}`).catch(() => undefined);
      throw new Error(`runc run ${name} failed (${r.status ?? r.signal}): ${readFileSync(`${bundle}/runc.log`, 'utf8').trim().split('\n').slice(-3).join(' ')}`);
    }
    const info = await adapter.inspect(name);
    return { name, bundle, pid: info.pid, address };
  }
  if (command === 'state') {
    try {
      const info = await adapter.inspect(name);
      const stateFile = info.bundle ? stateFileOf(info.bundle) : undefined;
      return { exists: true, state: info.state, pid: info.pid, bundle: info.bundle, stateFile, workload: stateFile ? readWorkloadState(stateFile) : undefined };
    } catch (err) {
      if (err.code === 'ERR_RUNTIME_NOT_FOUND') return { exists: false };
      throw err;
    }
  }
  if (command === 'verify') {
    const info = await adapter.inspect(name);
    return { verdict: await verifyWorkloadMemory(info.pid, stateFileOf(info.bundle)) };
  }
  if (command === 'remove') {
    await adapter.remove(name);
    const ns = `/run/netns/ferry-ct-${name}`;
    if (existsSync(ns)) require('node:child_process').execFileSync('ip', ['netns', 'delete', `ferry-ct-${name}`]);
    return { removed: true };
  }
  if (command === 'remove-bundle') {
    // The bundle `start` made stays in /tmp when the container moved away (ferry removes the container, not the
    // test's directory): 2.8 MB a test. Only once the test is over: a replica's failover still binds its /state.
    // Exactly mkdtemp's name for this container: a prefix alone would also take clone-N-copy's for clone-N.
    const own = new RegExp(`^ferry-bundle-${name.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`)}-[A-Za-z0-9]{6}$`);
    for (const entry of readdirSync(tmpdir())) if (own.test(entry)) removeUnlessMounted(`${tmpdir()}/${entry}`);
    return { removed: true };
  }
  throw new Error(`unknown command ${command}`);
}

/** The host directory bound at /state in the container (where the workload writes its state file). */
function stateFileOf(bundle) {
  const config = JSON.parse(readFileSync(`${bundle}/config.json`, 'utf8'));
  const mount = (config.mounts || []).find((m) => m.destination === '/state');
  return mount ? `${mount.source}/state` : undefined;
}

main().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (err) => {
    process.stderr.write(`container-ctl: ${err.stack || err}\n`);
    process.exit(1);
  },
);
