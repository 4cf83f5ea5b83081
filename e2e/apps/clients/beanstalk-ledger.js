#!/usr/bin/env node
'use strict';
/**
 * node beanstalk-ledger.js HOST PORT [INTERVAL_MS]: a producer and a consumer of beanstalkd's text protocol on two
 * connections, kept open throughout. The producer puts job N every INTERVAL_MS (body "N SENT_AT_MS"); the consumer
 * reserves and deletes jobs as they come. On SIGTERM production stops, the consumer drains the tube, and one JSON
 * line tells whether every job beanstalkd acknowledged (INSERTED) was delivered exactly once, the longest time from
 * put to delivery, and whether either connection closed on the way.
 */
const net = require('node:net');

const [host, port, intervalText] = process.argv.slice(2);
const intervalMs = Number(intervalText || 10);
const acked = new Set();
const delivered = new Map();
let duplicates = 0;
let maxLatencyMs = 0;
let closed = 0;
let seq = 0;
let stopping = false;

/** One connection: commands answered in order, each answer one line (plus a body for RESERVED). */
function connection(role) {
  const socket = net.connect({ host, port: Number(port) });
  socket.setNoDelay(true);
  let buffer = Buffer.alloc(0);
  const queue = [];
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const eol = buffer.indexOf('\r\n');
      if (eol < 0 || queue.length === 0) return;
      const line = buffer.subarray(0, eol).toString();
      const m = /^RESERVED \d+ (\d+)$/.exec(line);
      const need = m ? eol + 2 + Number(m[1]) + 2 : eol + 2;
      if (buffer.length < need) return;
      const body = m ? buffer.subarray(eol + 2, need - 2).toString() : undefined;
      buffer = buffer.subarray(need);
      queue.shift()({ line, body });
    }
  });
  // A closed connection answers whatever is still waiting with CLOSED: the client then reports instead of hanging.
  socket.on('close', () => {
    if (!stopping) {
      closed++;
      closedConnections.push(role);
    }
    for (const resolve of queue.splice(0)) resolve({ line: 'CLOSED' });
  });
  socket.on('error', (err) => errors.push(`${role}: ${err.code ?? err.message}`));
  return {
    send: (text) => new Promise((resolve) => {
      if (socket.destroyed) return resolve({ line: 'CLOSED' });
      waiting.set(role, { command: text.split('\r\n')[0], since: Date.now() });
      queue.push((answer) => {
        waiting.delete(role);
        resolve(answer);
      });
      socket.write(text);
    }),
    end: () => socket.end(),
  };
}

/** The command each connection still waits an answer to: reported when the drain never ends. */
const waiting = new Map();
const closedConnections = [];
const errors = [];
const producer = connection('producer');
const consumer = connection('consumer');
const timer = setInterval(async () => {
  const n = ++seq;
  const body = `${n} ${Date.now()}`;
  const { line } = await producer.send(`put 0 0 60 ${body.length}\r\n${body}\r\n`);
  if (/^INSERTED \d+$/.test(line)) acked.add(n);
}, intervalMs);

let draining = false;
(async () => {
  for (;;) {
    const { line, body } = await consumer.send(`reserve-with-timeout ${draining ? 2 : 1}\r\n`);
    if (line === 'CLOSED') break;
    if (line === 'TIMED_OUT') {
      if (draining) break;
      continue;
    }
    const id = /^RESERVED (\d+)/.exec(line)?.[1];
    if (!id) continue;
    const [n, sentAt] = body.split(' ').map(Number);
    maxLatencyMs = Math.max(maxLatencyMs, Date.now() - sentAt);
    if (delivered.has(n)) duplicates++;
    delivered.set(n, true);
    await consumer.send(`delete ${id}\r\n`);
  }
  report();
})();

function report(stuck) {
  stopping = true;
  const missing = [...acked].filter((n) => !delivered.has(n));
  const ok = missing.length === 0 && duplicates === 0 && closed === 0 && !stuck;
  process.stdout.write(`${JSON.stringify({ ok, put: seq, acked: acked.size, delivered: delivered.size, missing: missing.length, duplicates, closed, closedConnections, errors, maxLatencyMs, ...(stuck ? { stuck } : {}) })}\n`);
  producer.end();
  consumer.end();
  process.exit(0);
}

process.on('SIGTERM', () => {
  clearInterval(timer);
  // The last put's answer is still on its way: give it a moment, then drain.
  setTimeout(() => (draining = true), 500);
  // A drain that never ends is an answer that never came: say which, rather than be killed without a word.
  setTimeout(() => report(Object.fromEntries([...waiting].map(([role, w]) => [role, `${w.command} unanswered for ${Date.now() - w.since} ms`]))), 15_000).unref();
});
