#!/usr/bin/env node
'use strict';
/**
 * The migration benchmark's outside client: e2e/bin/downtime-client.js (one TCP connection, "ping N" every
 * INTERVAL ms, the longest silence between two answers is the downtime a client sees), plus two things a benchmark
 * needs and the demo client does not do:
 *   - a silence still going on at the end counts (a connection that hangs for good must not look like 0 ms), and
 *   - when the connection breaks, it keeps opening new ones (each attempt times out after CONNECT_TIMEOUT_MS), so a
 *     method that loses TCP connections still gets a service downtime: until a new connection answers.
 *   node downtime-probe.js HOST PORT [INTERVAL_MS]
 * On stderr: "connected" once the first connection is made, then "since MS" (time since the last answer) every
 * 100 ms. On SIGTERM/SIGINT, one JSON line on stdout:
 *   { connected, connectionSurvived, firstClosedBy?, reconnects, refused, pingsSent, pingsAnswered, longestSilenceMs,
 *     trailingSilenceMs, gaps: [[start ms, length ms], ...] (silences >= 100 ms), startedAtMs (epoch ms the gap
 *     starts count from) }
 * connectionSurvived: the first connection was never closed and answered after its longest silence.
 */
const net = require('node:net');

const [host, portText, intervalText] = process.argv.slice(2);
if (!host || !portText) {
  process.stderr.write('usage: downtime-probe.js HOST PORT [INTERVAL_MS]\n');
  process.exit(2);
}
const port = Number(portText);
const intervalMs = Number(intervalText || 10);
const CONNECT_TIMEOUT_MS = 100;
const STATUS_INTERVAL_MS = 100;
/** Silences of at least GAP_LOG_MS are listed in the result as [start ms after launch, length ms]. */
const GAP_LOG_MS = 100;
const GAP_LOG_MAX = 50;
const started = performance.now();
const gaps = [];

let seq = 0;
let answered = 0;
let lastAnswer = 0; // performance.now() of the last answer on any connection
let longestGapMs = 0;
let longestGapEndedAt = 0;
let reconnects = 0;
let refused = 0;
let first; // the first connection that was established
let current; // the connection pings go to
let stopping = false;
let firstClosedBy; // why the first connection ended (ECONNRESET, ...), if it did

function open() {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  const state = { socket, closed: false, lastAnswerAt: 0, buffered: '' };
  // Only reconnections get a short connect timeout; the first connection waits for the kernel's.
  const timer = first ? setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS) : undefined;
  socket.on('connect', () => {
    if (timer) clearTimeout(timer);
    if (!first) {
      first = state;
      lastAnswer = performance.now();
      process.stderr.write('connected\n');
    } else {
      reconnects++;
    }
    current = state;
  });
  socket.on('data', (chunk) => {
    state.buffered += chunk.toString();
    const lines = state.buffered.split('\n');
    state.buffered = lines.pop();
    for (const line of lines) {
      // The workload echoes whatever one read() returned: several pings may come back as "echo ping 1\nping 2".
      if (!/^(?:echo )?ping \d+$/.test(line)) continue;
      const now = performance.now();
      if (now - lastAnswer >= GAP_LOG_MS && gaps.length < GAP_LOG_MAX) gaps.push([Math.round(lastAnswer - started), Math.round(now - lastAnswer)]);
      if (now - lastAnswer > longestGapMs) {
        longestGapMs = now - lastAnswer;
        longestGapEndedAt = now;
      }
      lastAnswer = now;
      state.lastAnswerAt = now;
      answered++;
    }
  });
  const onGone = (err) => {
    if (timer) clearTimeout(timer);
    if (state.closed) return;
    state.closed = true;
    if (state === first && !stopping) firstClosedBy = err?.code ?? 'closed by the server';
    // A reconnection refused: a SYN answered with a reset (the port had no listener yet).
    if (first && state !== first && err?.code === 'ECONNREFUSED') refused++;
    if (current === state) current = undefined;
    if (stopping || current) return;
    // Broken, or not made yet: try again at once (a refused or timed-out attempt comes back here).
    setTimeout(open, first ? 0 : 50);
  };
  socket.on('close', onGone);
  socket.on('error', onGone);
}

open();

const pinger = setInterval(() => {
  if (!current || current.closed) return;
  seq++;
  current.socket.write(`ping ${seq}\n`);
}, intervalMs);

// Status for the benchmark, which waits until answers flow steadily again before it stops the probe.
const status = setInterval(() => {
  if (first) process.stderr.write(`since ${Math.round(performance.now() - lastAnswer)}\n`);
}, STATUS_INTERVAL_MS);

function finish() {
  stopping = true;
  clearInterval(pinger);
  clearInterval(status);
  const now = performance.now();
  const trailing = first ? now - lastAnswer : 0;
  const result = {
    connected: Boolean(first),
    // The first connection is open, answered after the longest silence, and answers now.
    connectionSurvived: Boolean(
      first && !first.closed && first.lastAnswerAt >= longestGapEndedAt && trailing <= Math.max(20 * intervalMs, 200),
    ),
    ...(firstClosedBy ? { firstClosedBy } : {}),
    reconnects,
    refused,
    pingsSent: seq,
    pingsAnswered: answered,
    longestSilenceMs: Math.round(Math.max(longestGapMs, trailing)),
    trailingSilenceMs: Math.round(trailing),
    gaps,
    startedAtMs: Math.round(performance.timeOrigin + started),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const s of [first, current]) s?.socket.destroy();
  process.exit(0);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
