#!/usr/bin/env node
'use strict';
/**
 * Switch-over benchmark (docs/network-switchover.md): the same runc move between the two sandbox hosts, with the
 * destination's network wired in different ways, side by side in one run. What the client sees of the move
 * (bench/downtime-probe.js: the longest silence on its TCP connection) against ferry's own freeze -> running.
 *
 *   node bench/switchover-bench.js [--variants baseline,early,hold-restore,hold-fence] [--strategies stop-and-copy,post-copy]
 *       [--runs 3] [--mem-mib 64] [--dirty-percent 2] [--out bench/results/switchover.md]
 *
 * Variants:
 *   hold          ferry as it is: the destination holds the copy's namespace's packets from the source's fence
 *                 (its links come up behind the hold then) and delivers them right after it journaled `committed`
 *                 (packages/core/src/runtime/runc-traffic-hold.ts).
 *   hold-at-restore  ferry with the links raised only at the restore (its agent runs with FERRY_PACKET_HOLD=restore):
 *                 what it did before the hold started at the fence.
 *   nohold        ferry with that hold off on the destination (its agent runs with FERRY_PACKET_HOLD=off): the
 *                 bridge end of the restored namespace stays down until the commit.
 * and, for the exploration that led to `hold` (the destination side played by bench/switchover-helper.js on h2,
 * with the core package's createNetns and PacketHold; ferry's own hold off, as in nohold):
 *   baseline      the same as nohold.
 *   early         the bridge end comes up as soon as the namespace exists, before the restore (nothing held).
 *   neigh         as baseline, plus the client's neighbour entry given to the namespace the moment its bridge end
 *                 comes up (what copying the source's neighbour table would do): no 1 s ARP retry.
 *   hold-restore  as early, but the namespace's traffic is held (NFQUEUE) from then on and released when the
 *                 restore phase ends.
 *   hold-fence    the namespace is made (and held) before the move; its bridge end comes up the moment the source's
 *                 link goes down (the fence), so everything the client sends during the whole freeze is held;
 *                 released when the restore phase ends.
 * The helper's release comes at the end of the restore phase; ferry's own (hold) right after `committed`.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

process.env.FERRY_BENCH_NAME ??= 'swbench';
const m = require('./migration-bench');

const ROOT = path.resolve(__dirname, '..');
const HELPER = path.join(__dirname, 'switchover-helper.js');
const SANDBOX_SCRIPT = path.join(ROOT, 'scripts', 'sandbox-hosts.sh');
const VARIANTS = ['hold', 'hold-at-restore', 'nohold', 'baseline', 'early', 'neigh', 'hold-restore', 'hold-fence'];
/** Variants that are ferry itself, with the agent command they run on h2 (the others: ferry's hold off, helper on h2). */
const FERRY_VARIANTS = {
  hold: [],
  'hold-at-restore': ['--agent-command', 'env FERRY_PACKET_HOLD=restore ferry agent'],
  nohold: ['--agent-command', 'env FERRY_PACKET_HOLD=off ferry agent'],
};
const env = { ...process.env, FERRY_SANDBOX_NAME: m.SANDBOX_NAME, FERRY_SANDBOX_DIR: m.SANDBOX_DIR };
const log = (line) => process.stdout.write(`${line}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'hold,nohold' },
      strategies: { type: 'string', default: 'stop-and-copy,post-copy' },
      runs: { type: 'string', default: '3' },
      'mem-mib': { type: 'string', default: '64' },
      'dirty-percent': { type: 'string', default: '2' },
      out: { type: 'string', default: path.join(__dirname, 'results', 'switchover.md') },
      'from-json': { type: 'string' },
    },
  });
  const list = (t) => t.split(',').map((s) => s.trim()).filter(Boolean);
  const o = { fromJson: values['from-json'], variants: list(values.variants), strategies: list(values.strategies), runs: Number(values.runs), memMib: Number(values['mem-mib']), dirtyPercent: Number(values['dirty-percent']), out: path.resolve(values.out) };
  for (const v of o.variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v} (${VARIANTS.join(', ')})`);
  return o;
}

/** A long-running process with line-wise stdout, for the helper on h2 and `ip monitor` on the LAN. */
function lines(child, onLine) {
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (c) => {
    pending += c;
    const parts = pending.split('\n');
    pending = parts.pop();
    for (const l of parts) onLine(l);
  });
}

function startHelper() {
  const child = spawn('bash', [SANDBOX_SCRIPT, 'exec', 'h2', '--', 'node', HELPER, `${m.SANDBOX_DIR}/lan.netns`, 'br-lan'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  m.children.add(child);
  const waiting = new Map();
  let ids = 0;
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  lines(child, (l) => {
    let o;
    try {
      o = JSON.parse(l);
    } catch {
      return;
    }
    if (o.ready) return onReady();
    waiting.get(o.id)?.(o);
    waiting.delete(o.id);
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const ask = (command) =>
    new Promise((resolve, reject) => {
      const id = String(++ids);
      waiting.set(id, (o) => (o.error ? reject(new Error(`helper ${command}: ${o.error}`)) : resolve(o)));
      child.stdin.write(`${id} ${command}\n`);
    });
  return { ready, ask, child, stderr: () => stderr };
}

async function lanLinks() {
  const r = await m.run('nsenter', [`--net=${m.LAN_NETNS}`, 'ip', '-j', 'link', 'show']);
  return JSON.parse(r.stdout).map((l) => l.ifname);
}

async function trial({ variant, strategy, memMib, dirtyPercent, seq }) {
  const name = `sw${process.pid % 1000}x${seq}`;
  const address = `10.77.0.${10 + (seq % 240)}`;
  const row = { variant, strategy, memMib, ok: false };
  let probe;
  let helper;
  let monitor;
  let capture;
  try {
    m.live.set(name, {});
    const before = new Set(await lanLinks());
    const pages = (memMib * 1024 * 1024) / m.PAGE_SIZE;
    const started = await m.ctl('h1', 'start', name, '--mem-mib', String(memMib), '--dirty-pages-per-sec', String(Math.round((pages * dirtyPercent) / 100)), '--address', `${address}/24`);
    m.live.set(name, { bundle: started.bundle });
    const sourcePort = (await lanLinks()).find((l) => !before.has(l));
    const link = await m.onHost('h1', ['ip', '-n', `ferry-ct-${name}`, '-j', 'link', 'show', 'eth0']);
    const mac = JSON.parse(link.stdout)[0].address;
    probe = m.startProbe(address);
    await probe.connected;
    if (process.env.SWITCHOVER_CAPTURE_DIR) {
      // Every frame to or from the container on every LAN port, for reading a trial packet by packet.
      capture = spawn('nsenter', [`--net=${m.LAN_NETNS}`, 'tcpdump', '-l', '-n', '-tt', '-i', 'any', `host ${address} or arp`], { stdio: ['ignore', fs.openSync(path.join(process.env.SWITCHOVER_CAPTURE_DIR, `${seq}-${strategy}-${variant}.txt`), 'w'), 'ignore'] });
      m.children.add(capture);
    }

    if (!FERRY_VARIANTS[variant]) {
      helper = startHelper();
      await helper.ready;
    }
    if (variant === 'hold-fence') {
      await helper.ask(`prepare ${name} ${address}/24 ${mac}`);
      monitor = spawn('nsenter', [`--net=${m.LAN_NETNS}`, 'ip', '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
      m.children.add(monitor);
      let raised = false;
      lines(monitor, (l) => {
        if (raised || !l.includes(`${sourcePort}@`) || !/NO-CARRIER|state DOWN/.test(l)) return;
        raised = true;
        row.fencedAt = Date.now();
        helper.ask('raise').then((o) => (row.raisedAt = o.atMs), (err) => (row.helperError = err.message));
      });
    } else if (variant === 'neigh') {
      const lan = await m.run('nsenter', [`--net=${m.LAN_NETNS}`, 'ip', '-j', 'link', 'show', 'br-lan']);
      helper.ask(`neigh ${name} 10.77.0.1 ${JSON.parse(lan.stdout)[0].address}`).then((o) => (row.raisedAt = o.atMs), (err) => (row.helperError = err.message));
    } else if (variant === 'early' || variant === 'hold-restore') {
      helper.ask(`watch ${name} ${variant === 'early' ? 'nohold' : 'hold'}`).then((o) => (row.raisedAt = o.atMs), (err) => (row.helperError = err.message));
    }
    await m.sleep(m.SETTLE_BEFORE_MS);

    // ferry migrate on h1, its events read as they come: the release goes out when the restore phase ends.
    const events = [];
    let releasing;
    const wallStart = Date.now();
    const code = await new Promise((resolve) => {
      const child = spawn('bash', [SANDBOX_SCRIPT, 'exec', 'h1', '--', 'env', `FERRY_NETNS_UPLINK=${m.UPLINK}`, 'ferry', 'migrate', name, '--to', 'h2', '--hosts-file', m.HOSTS_FILE, '--strategy', strategy, ...(FERRY_VARIANTS[variant] ?? ['--agent-command', 'env FERRY_PACKET_HOLD=off ferry agent']), '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      m.children.add(child);
      const onLine = (l) => {
        let o;
        try {
          o = JSON.parse(l);
        } catch {
          return;
        }
        events.push({ ...o, atMs: Date.now() });
        if (o.event === 'phase-end' && o.phase === 'restore' && variant.startsWith('hold-') && !FERRY_VARIANTS[variant] && !releasing) {
          row.releaseAskedAt = Date.now();
          releasing = helper.ask('release').then(
            (r) => ((row.release = r.released), (row.releasedAt = r.atMs - r.released.decisionMs + r.released.verdictMs)),
            (err) => (row.helperError = err.message),
          );
        }
      };
      lines(child, onLine);
      let pendingErr = '';
      child.stderr.setEncoding('utf8').on('data', (c) => {
        pendingErr += c;
        const parts = pendingErr.split('\n');
        pendingErr = parts.pop();
        parts.forEach(onLine);
      });
      child.on('close', (c) => (m.children.delete(child), resolve(c)));
    });
    await releasing;
    row.wallMs = Date.now() - wallStart;
    row.clientSteady = await probe.steady(m.STEADY_MAX_MS);
    await m.sleep(m.SETTLE_AFTER_MS);
    const client = await probe.stop();
    probe = undefined;
    const report = events.find((e) => e.event === 'report')?.report;
    const error = events.find((e) => e.event === 'error');
    if (code !== 0 || !report) {
      row.error = error ? `${error.error?.code}: ${error.error?.message}` : `exit ${code}`;
      return row;
    }
    const at = (event, phase) => events.find((e) => e.event === event && e.phase === phase)?.atMs;
    row.downtimeMs = report.downtimeMs;
    row.clientMs = client?.longestSilenceMs;
    row.clientDisruptedMs = disruption(client?.gaps ?? []);
    // Epoch ms (one clock: every process runs on this machine): when the client's longest silence ended, and how
    // long after ferry's restore phase (and the hold's release) that was.
    if (client?.gaps?.length && client.startedAtMs) {
      const longest = client.gaps.reduce((a, g) => (g[1] > a[1] ? g : a));
      row.answeredAt = client.startedAtMs + longest[0] + longest[1];
      row.silenceFrom = client.startedAtMs + longest[0];
      row.gaps = client.gaps.map(([start, ms]) => [client.startedAtMs + start - row.silenceFrom, ms]);
    }
    row.survived = client?.connectionSurvived === true;
    row.freezeAt = at('phase-start', 'freeze');
    row.restoreEndAt = at('phase-end', 'restore');
    row.resets = await m.tcpCounter('h2', name, 'OutRsts');
    if (FERRY_VARIANTS[variant]) {
      // ferry's own release comes right after the destination's `committed`, before it answers the commit.
      row.commitEndAt = at('phase-end', 'commit');
      const id = events.find((e) => e.event === 'guardian')?.id;
      const journal = id ? await m.onHost('h2', ['cat', `/var/lib/ferry/migrations/${id}/journal`]).catch(() => undefined) : undefined;
      const note = (journal?.stdout ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.t === 'note' && /network of .* released/.test(r.message));
      const held = /held (\d+) in \/ (\d+) out, verdict (\d+|\?) ms/.exec(note?.message ?? '');
      if (held) row.release = { held: { inbound: Number(held[1]), outbound: Number(held[2]) }, verdictMs: Number(held[3]) || undefined };
      else if (note) row.releaseNote = note.message;
    }
    // What the client waited beyond the moment ferry had the copy running (and, held, released): the goal is ~0.
    if (row.answeredAt) row.afterRunningMs = row.answeredAt - (row.releasedAt ?? row.commitEndAt ?? row.restoreEndAt);
    const verdict = await m.ctl('h2', 'verify', name).catch((err) => ({ verdict: `error: ${err.message}` }));
    row.memory = verdict.verdict;
    row.ok = row.memory === 'ok';
    return row;
  } catch (err) {
    row.error = err.message;
    return row;
  } finally {
    if (probe) probe.kill();
    if (monitor) monitor.kill();
    if (capture) capture.kill('SIGINT');
    if (helper) {
      await helper.ask('quit').catch(() => undefined);
      helper.child.kill();
    }
    await m.removeContainer(name).catch(() => undefined);
  }
}

/**
 * From the start of the longest silence to the end of the silences that follow it back to back (a gap starting
 * within 150 ms of the previous one's end): a client answered once from requests the restored socket still had,
 * then silent again until its own retransmission timer fires, was disrupted for all of it.
 */
function disruption(gaps) {
  if (!gaps.length) return undefined;
  let i = gaps.reduce((best, g, k) => (g[1] > gaps[best][1] ? k : best), 0);
  const start = gaps[i][0];
  let end = gaps[i][0] + gaps[i][1];
  while (i + 1 < gaps.length && gaps[i + 1][0] - end <= 150) end = gaps[++i][0] + gaps[i][1];
  return end - start;
}

/** The silence right after the longest one (within 150 ms of its end): a client waiting for its own timer. */
function nextSilence(r) {
  if (!r.gaps) return undefined;
  const i = r.gaps.findIndex((g) => g[0] === 0);
  const next = r.gaps[i + 1];
  return i >= 0 && next && next[0] - r.gaps[i][1] <= 150 ? next[1] : 0;
}

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!s.length) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
};

function render(o, rows, elapsedMs) {
  const out = [`# Switch-over benchmark (${new Date().toISOString().slice(0, 10)})`, '', `\`node bench/switchover-bench.js --variants ${o.variants.join(',')} --strategies ${o.strategies.join(',')} --runs ${o.runs} --mem-mib ${o.memMib}\`: runc, ${o.memMib} MiB dirtying ${o.dirtyPercent}%/s, client pinging every 10 ms; ${(elapsedMs / 60000).toFixed(1)} minutes. Medians; every trial below.`, ''];
  out.push('| strategy | variant | client-seen ms | freeze→running ms | client − freeze ms | answered after running (released) ms | then silent again ms | resets | connection kept | trials ok |', '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const strategy of o.strategies) {
    for (const variant of o.variants) {
      const rs = rows.filter((r) => r.strategy === strategy && r.variant === variant);
      const ok = rs.filter((r) => r.ok);
      out.push(`| ${strategy} | ${variant} | ${median(ok.map((r) => r.clientMs)) ?? '-'} | ${median(ok.map((r) => r.downtimeMs)) ?? '-'} | ${median(ok.map((r) => r.clientMs - r.downtimeMs)) ?? '-'} | ${median(ok.map((r) => r.afterRunningMs)) ?? '-'} | ${median(ok.map(nextSilence)) ?? '-'} | ${ok.reduce((a, r) => a + (r.resets ?? 0), 0)} | ${ok.filter((r) => r.survived).length}/${ok.length} | ${ok.length}/${rs.length} |`);
    }
  }
  out.push('', '| # | strategy | variant | client ms | freeze→running ms | answered after running ms | then silent ms | resets | held in/out | release verdict ms | error |', '|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|');
  rows.forEach((r, i) => out.push(`| ${i + 1} | ${r.strategy} | ${r.variant} | ${r.clientMs ?? '-'} | ${r.downtimeMs ?? '-'} | ${r.afterRunningMs ?? '-'} | ${nextSilence(r) ?? '-'} | ${r.resets ?? '-'} | ${r.release ? `${r.release.held.inbound}/${r.release.held.outbound}` : '-'} | ${r.release?.verdictMs ?? '-'} | ${r.error ?? r.helperError ?? ''} |`));
  return `${out.join('\n')}\n`;
}

async function main() {
  const o = options();
  if (o.fromJson) {
    // No measuring: the table again from the raw rows of an earlier run.
    const rows = JSON.parse(fs.readFileSync(o.fromJson, 'utf8'));
    o.strategies = [...new Set(rows.map((r) => r.strategy))];
    o.variants = [...new Set(rows.map((r) => r.variant))];
    o.runs = Math.max(...rows.map((r) => rows.filter((x) => x.variant === r.variant && x.strategy === r.strategy).length));
    o.memMib = rows[0]?.memMib ?? o.memMib;
    stopping = true; // nothing to clean up
    return log(render(o, rows, 0));
  }
  const t0 = Date.now();
  await m.sandbox('down');
  const up = await m.sandbox('up');
  if (up.status !== 0) throw new Error(`sandbox up failed: ${up.stderr}`);
  const rows = [];
  let seq = 0;
  for (let run = 0; run < o.runs; run++) {
    for (const strategy of o.strategies) {
      // The order rotates from run to run: the machine is shared and its load drifts.
      const order = o.variants.map((_, i) => o.variants[(i + run) % o.variants.length]);
      for (const variant of order) {
        const row = await trial({ variant, strategy, memMib: o.memMib, dirtyPercent: o.dirtyPercent, seq: ++seq });
        rows.push(row);
        log(`${strategy} ${variant}: client ${row.clientMs ?? '-'} ms (disrupted ${row.clientDisruptedMs ?? '-'} ms), freeze→running ${row.downtimeMs ?? '-'} ms, resets ${row.resets ?? '-'}${row.release ? `, held ${row.release.held.inbound}/${row.release.held.outbound}` : ''}${row.error ? ` ERROR ${row.error}` : ''}${row.helperError ? ` helper: ${row.helperError}` : ''}`);
        fs.mkdirSync(path.dirname(o.out), { recursive: true });
        fs.writeFileSync(o.out.replace(/\.md$/, '.json'), JSON.stringify(rows, null, 2));
      }
    }
  }
  fs.writeFileSync(o.out, render(o, rows, Date.now() - t0));
  log(render(o, rows, Date.now() - t0));
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`switchover-bench: ${sig}, cleaning up\n`);
    process.exitCode = 130;
    cleanup().finally(() => process.exit(130));
  });
}

async function cleanup() {
  for (const child of m.children) child.kill('SIGTERM');
  for (const name of [...m.live.keys()]) await m.removeContainer(name).catch(() => undefined);
  await m.sandbox('down');
}

main()
  .catch((err) => {
    process.stderr.write(`switchover-bench: ${err.stack || err}\n`);
    process.exitCode = 1;
  })
  .finally(() => (stopping ? undefined : cleanup()));
