'use strict';
/**
 * Mosquitto as Debian ships it (stock /etc/mosquitto/mosquitto.conf: persistence on, a log file, conf.d included),
 * run as its systemd unit does (`mosquitto -c /etc/mosquitto/mosquitto.conf` as root; it drops to the mosquitto
 * user). Load: mosquitto's own clients, one connection each held throughout: mosquitto_sub (QoS 1) and mosquitto_pub
 * -l (QoS 1) publishing message N every 10 ms with its send time. Data: every message the broker acknowledged
 * (PUBACK) was delivered to the subscriber; neither client connected twice (no reconnect after a reset).
 */
const { chownSync, mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { collect, spawnOnLan } = require('../sandbox-access');
const { sleep, tcpOpen, waitUntil } = require('../app-kit');
const { idsOf } = require('../bundle');

const PORT = 1883;
const TOPIC = 'ferry/ledger';
const INTERVAL_MS = 10;

module.exports = {
  name: 'mosquitto',
  kind: 'message broker (MQTT)',
  packages: ['mosquitto', 'mosquitto-clients'],
  versionOf: 'mosquitto',
  port: PORT,
  run: { args: ['/usr/sbin/mosquitto', '-c', '/etc/mosquitto/mosquitto.conf'] },
  deviations: 'a conf.d file with `listener 1883` and `allow_anonymous true` (mosquitto 2 listens on localhost only without one)',
  prepare(rootfs) {
    writeFileSync(join(rootfs, 'etc', 'mosquitto', 'conf.d', 'lan.conf'), '# ferry e2e/apps: clients on the sandbox LAN\nlistener 1883\nallow_anonymous true\n');
    // The unit's ExecStartPre: /run/mosquitto for the pid file, owned by mosquitto.
    const run = join(rootfs, 'run', 'mosquitto');
    mkdirSync(run, { recursive: true, mode: 0o740 });
    const { uid } = idsOf(rootfs, 'mosquitto');
    chownSync(run, uid, 0);
  },
  async ready(ctx) {
    await waitUntil('mosquitto to accept connections', () => tcpOpen(ctx.sb, ctx.address, PORT), 60_000);
  },
  loadLabel: 'mosquitto_pub -l + mosquitto_sub, QoS 1, 100 msg/s on held connections',
  startLoad(ctx) {
    const common = ['-h', ctx.address, '-p', String(PORT), '-q', '1', '-t', TOPIC, '-d'];
    const sub = spawnOnLan(ctx.sb, ctx.rootfs, ['mosquitto_sub', ...common, '-v', '-i', `sub-${ctx.name}`]);
    const pub = spawnOnLan(ctx.sb, ctx.rootfs, ['mosquitto_pub', ...common, '-l', '-i', `pub-${ctx.name}`]);
    const received = new Map();
    let maxLatencyMs = 0;
    let subText = '';
    sub.stdout.setEncoding('utf8').on('data', (c) => {
      subText += c;
      const now = Date.now();
      for (const m of c.matchAll(new RegExp(`^${TOPIC} (\\d+) (\\d+)$`, 'gm'))) {
        received.set(Number(m[1]), (received.get(Number(m[1])) ?? 0) + 1);
        maxLatencyMs = Math.max(maxLatencyMs, now - Number(m[2]));
      }
    });
    const subDone = collect(sub);
    const pubDone = collect(pub);
    let seq = 0;
    const started = (async () => {
      await sleep(1000); // the subscription first
      return setInterval(() => pub.stdin.write(`${++seq} ${Date.now()}\n`), INTERVAL_MS);
    })();
    return {
      stop: async () => {
        clearInterval(await started);
        pub.stdin.end(); // mosquitto_pub -l sends what is left and disconnects at EOF
        const p = await pubDone;
        await sleep(1000);
        sub.kill('SIGTERM');
        const s = await subDone;
        const pubLog = p.stdout + p.stderr;
        const acked = [...pubLog.matchAll(/received PUBACK \(Mid: (\d+)/g)].length;
        const connects = (text) => [...text.matchAll(/sending CONNECT/g)].length;
        // Mids count up from 1 in publish order: the first `acked` messages are the acknowledged ones.
        let missing = 0;
        for (let n = 1; n <= acked; n++) if (!received.has(n)) missing++;
        const duplicates = [...received.values()].filter((c) => c > 1).length;
        const errors = [];
        if (connects(pubLog) !== 1 || connects(subText + s.stderr) !== 1) errors.push(`reconnects: publisher ${connects(pubLog)} CONNECTs, subscriber ${connects(subText + s.stderr)}`);
        if (p.status !== 0) errors.push(`mosquitto_pub exited ${p.status}: ${p.stderr.slice(-300)}`);
        return { ok: errors.length === 0, errors, maxLatencyMs, opsPerSec: Math.round(1000 / INTERVAL_MS), requests: acked, ledger: { sent: seq, acked, received: received.size, missing, duplicates } };
      },
    };
  },
  async verify(ctx, load) {
    const l = load.ledger;
    const ok = l.acked > 0 && l.missing === 0 && l.acked >= l.sent - 20;
    return { ok, detail: ok ? `${l.acked} of ${l.sent} messages acknowledged (QoS 1), all delivered${l.duplicates ? ` (${l.duplicates} redelivered, as QoS 1 allows)` : ''}` : `ledger ${JSON.stringify(l)}` };
  },
};
