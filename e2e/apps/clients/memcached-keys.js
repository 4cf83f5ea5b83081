#!/usr/bin/env node
'use strict';
/**
 * node memcached-keys.js HOST PORT set|check COUNT: stores COUNT keys ferry-key-N (value: sha256 of the name)
 * or reads them back, over one connection of memcached's text protocol; also reads the server's pid and uptime
 * (`stats`). Prints {"ok":..., "missing":N, "wrong":N, "pid":N, "uptime":N}.
 */
const net = require('node:net');
const { createHash } = require('node:crypto');

const [host, port, mode, countText] = process.argv.slice(2);
const count = Number(countText);
const value = (i) => createHash('sha256').update(`ferry-key-${i}`).digest('hex');
const socket = net.connect({ host, port: Number(port) });
let buffer = '';
const waiters = [];
socket.setEncoding('utf8').on('data', (c) => {
  buffer += c;
  while (waiters.length && waiters[0].test(buffer)) {
    const w = waiters.shift();
    const text = buffer;
    buffer = '';
    w.resolve(text);
  }
});
socket.on('error', (err) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: err.message })}\n`);
  process.exit(1);
});
const ask = (command, done) => new Promise((resolve) => { waiters.push({ test: (b) => done.test(b), resolve }); socket.write(command); });

(async () => {
  let missing = 0;
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const v = value(i);
    if (mode === 'set') {
      const r = await ask(`set ferry-key-${i} 0 0 ${v.length}\r\n${v}\r\n`, /\r\n$/);
      if (!r.startsWith('STORED')) wrong++;
    } else {
      const r = await ask(`get ferry-key-${i}\r\n`, /END\r\n$/);
      if (r === 'END\r\n') missing++;
      else if (!r.includes(`\r\n${v}\r\n`)) wrong++;
    }
  }
  const stats = await ask('stats\r\n', /END\r\n$/);
  const stat = (name) => Number(new RegExp(`STAT ${name} (\\d+)`).exec(stats)?.[1]);
  process.stdout.write(`${JSON.stringify({ ok: missing === 0 && wrong === 0, missing, wrong, pid: stat('pid'), uptime: stat('uptime'), totalConnections: stat('total_connections') })}\n`);
  socket.end();
})();
