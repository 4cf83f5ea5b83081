#!/usr/bin/env node
'use strict';
/**
 * LXC test containers on a sandbox host, for the e2e tests and the benchmark (the LXC counterpart of
 * container-ctl.js). Run it inside a host; containers live in LXC's default lxcpath, /var/lib/lxc, which each
 * sandbox host has to itself:
 *   scripts/sandbox-hosts.sh exec h1 -- node e2e/bin/lxc-ctl.js start NAME [--mem-mib N] [--dirty-pages-per-sec N]
 *     [--extra-config LINE]... [--address CIDR [--link BRIDGE]] [--port P]
 *   ... state NAME | verify NAME | remove NAME
 * It prints one JSON object.
 */
const { join } = require('node:path');
const { LxcAdapter, DEFAULT_LXC_PATH } = require('@ferry/core');
const { startLxcContainer, verifyWorkloadMemory, readWorkloadState } = require('@ferry/core/testing');

function option(args, name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

function options(args, name) {
  const out = [];
  for (let i = 0; i < args.length; i++) if (args[i] === `--${name}`) out.push(args[i + 1]);
  return out;
}

const stateFileOf = (dir) => join(dir, 'rootfs', 'state', 'state');

async function main() {
  const [command, name, ...rest] = process.argv.slice(2);
  if (!command || !name) throw new Error('usage: lxc-ctl.js start|state|verify|remove NAME [options]');
  const lxcpath = option(rest, 'lxcpath', DEFAULT_LXC_PATH);
  const adapter = new LxcAdapter({ lxcPaths: [lxcpath], searchPath: process.env.PATH });
  if (command === 'start') {
    const c = await startLxcContainer({
      name,
      lxcpath,
      memMib: Number(option(rest, 'mem-mib', '64')),
      dirtyPagesPerSec: Number(option(rest, 'dirty-pages-per-sec', '0')) || undefined,
      port: Number(option(rest, 'port', '0')) || undefined,
      extraConfig: options(rest, 'extra-config'),
      network: option(rest, 'address') ? { link: option(rest, 'link', 'lxcbr0'), address: option(rest, 'address') } : undefined,
    });
    return { name: c.name, dir: c.dir, stateFile: c.stateFile, pid: await c.pid(), address: option(rest, 'address'), port: Number(option(rest, 'port', '0')) || undefined };
  }
  if (command === 'state') {
    try {
      const info = await adapter.inspect(name);
      return { exists: true, state: info.state, pid: info.pid, dir: info.bundle, workload: readWorkloadState(stateFileOf(info.bundle)) };
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
    return { removed: true };
  }
  throw new Error(`unknown command ${command}`);
}

main().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (err) => {
    process.stderr.write(`lxc-ctl: ${err.stack || err}\n`);
    process.exit(1);
  },
);
