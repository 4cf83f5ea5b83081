#!/usr/bin/env node
'use strict';
/**
 * An outside client for the demo and the benchmark: holds one TCP connection to the workload, sends "ping N" every
 * INTERVAL ms and notes when each echo comes back. On SIGTERM it prints one JSON line:
 * the longest silence it saw (the downtime as a client experiences it), pings sent and answered, and whether the
 * same connection was still alive at the end.
 *   node downtime-client.js HOST PORT [INTERVAL_MS]
 */
const net = require('node:net');

const [host, port, intervalText] = process.argv.slice(2);
const intervalMs = Number(intervalText || 10);
const sent = new Map();
let seq = 0;
let answered = 0;
let lastAnswer = 0;
let longestGapMs = 0;
let gapEndedAt = 0;
let buffered = '';
let alive = false;
let connectedAt = 0;

const socket = net.connect({ host, port: Number(port) }, () => {
  alive = true;
  connectedAt = Date.now();
  lastAnswer = performance.now();
});
socket.setNoDelay(true);
socket.on('data', (chunk) => {
  buffered += chunk.toString();
  const lines = buffered.split('\n');
  buffered = lines.pop();
  for (const line of lines) {
    // The workload echoes whatever one read() returned: several pings may come back as "echo ping 1\nping 2".
    const m = /^(?:echo )?ping (\d+)$/.exec(line);
    if (!m) continue;
    const now = performance.now();
    const gap = now - lastAnswer;
    if (gap > longestGapMs) {
      longestGapMs = gap;
      gapEndedAt = Date.now();
    }
    lastAnswer = now;
    answered++;
    sent.delete(Number(m[1]));
  }
});
socket.on('close', () => (alive = false));
socket.on('error', () => (alive = false));

const timer = setInterval(() => {
  if (!alive) return;
  seq++;
  sent.set(seq, performance.now());
  socket.write(`ping ${seq}\n`);
}, intervalMs);

function finish() {
  clearInterval(timer);
  const result = {
    connected: connectedAt > 0,
    aliveAtEnd: alive,
    pingsSent: seq,
    pingsAnswered: answered,
    longestSilenceMs: Math.round(longestGapMs),
    silenceEndedAt: gapEndedAt ? new Date(gapEndedAt).toISOString() : undefined,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  socket.destroy();
  process.exit(0);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
