#!/usr/bin/env node
'use strict';
/**
 * A hostile local user's look at a host during a move (run it as uid 65534): every TCP listener and every unix
 * socket path this network namespace shows gets a connection, a CRIU page request (PS_IOV_GET, 32 bytes) and a
 * clean close (which a lazy dump's page server reads as "every page served"). Prints one JSON object
 * { "tcp:PORT" | PATH: "EACCES" | "ECONNREFUSED" | ... | "CONNECTED" | "ANSWERED N" }.
 *
 *   page-prober.js [--skip-port 22]...
 */
const fs = require('node:fs');
const net = require('node:net');

const skip = new Set();
for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === '--skip-port') skip.add(Number(process.argv[++i]));

function tcpListeners() {
  const ports = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') ports.add(parseInt(f[1].split(':').pop(), 16));
    }
  }
  return [...ports].filter((p) => !skip.has(p));
}

function unixPaths() {
  const out = new Set();
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const path = line.trim().split(/\s+/)[7];
    if (path && path.startsWith('/')) out.add(path);
  }
  return [...out];
}

// PS_IOV_GET (7) of one page at a typical stack address of pid 1.
const get = Buffer.alloc(32);
get.writeUInt32LE(7, 0);
get.writeBigUInt64LE(1n, 8);
get.writeBigUInt64LE(0x7ffd00000000n, 16);
get.writeBigUInt64LE(1n, 24);

function probe(key, connectArgs) {
  return new Promise((resolve) => {
    const s = net.connect(...connectArgs);
    let answered = 0;
    let result;
    s.on('data', (c) => (answered += c.length));
    s.once('connect', () => {
      result = 'CONNECTED';
      s.write(get);
      setTimeout(() => s.end(), 1000);
    });
    s.once('error', (e) => (result ??= e.code));
    s.once('close', () => resolve([key, answered > 0 ? `ANSWERED ${answered}` : result]));
    setTimeout(() => s.destroy(), 3000);
  });
}

const tries = [...tcpListeners().map((p) => probe(`tcp:${p}`, [p, '127.0.0.1'])), ...unixPaths().map((p) => probe(p, [p]))];
Promise.all(tries).then((r) => process.stdout.write(JSON.stringify(Object.fromEntries(r))));
