#!/usr/bin/env node
'use strict';
/** node tcp-probe.js HOST PORT: prints {"open":true|false} after one connect attempt (at most 2 s). */
const net = require('node:net');

const [host, port] = process.argv.slice(2);
const socket = net.connect({ host, port: Number(port) });
const finish = (open) => {
  process.stdout.write(`${JSON.stringify({ open })}\n`);
  socket.destroy();
  process.exit(0);
};
socket.setTimeout(2000, () => finish(false));
socket.on('connect', () => finish(true));
socket.on('error', () => finish(false));
