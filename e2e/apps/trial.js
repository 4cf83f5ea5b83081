'use strict';
/**
 * One application move, end to end, as a row of the compatibility matrix: a runc container of the application
 * (bundle.js) on h1, its own load tool driving it from the LAN, `ferry migrate NAME --to h2 --strategy auto` through
 * the CLI, the load stopped a little after the move, then the application's own checks (catalog/*.js).
 *
 *   const { moveApp } = require('../e2e/apps/trial');
 *   const row = await moveApp(sandboxNamed('ferrybench'), 'redis', { address: '10.77.0.200/24' });
 *   // row.frozenMs, row.gapMs (the longest request the load tool saw), row.dataIntact, row.result
 *
 * The sandbox must be up (scripts/sandbox-hosts.sh up). The container and its bundle are removed at the end, on
 * both hosts, whatever happened. The benchmark (bench/) reuses this function for its application rows.
 */
const { APPS } = require('./catalog');
const { debianRootfs } = require('./rootfs');
const { RUNTIMES } = require('./runtimes');
const { onHost, ferryOnHost } = require('./sandbox-access');
const { sleep } = require('./app-kit');

/** Load before the move (connections warm, steady rate) and after it (the clients must get answers again). */
const LOAD_BEFORE_MS = 3000;
const LOAD_AFTER_MS = 3000;

/**
 * @typedef {object} MatrixRow
 * @property {string} app @property {string} version @property {string} kind @property {string} runtime
 * @property {string} [strategy] what auto chose @property {number} [frozenMs] ferry's downtime (frozen until running)
 * @property {number} [gapMs] the longest request the load tool saw during the run
 * @property {string} load the tool and its rate @property {boolean} dataIntact @property {string} result "ok" or why not
 * @property {string} detail what the checks found
 */

/**
 * @param {import('./sandbox-access').Sandbox} sb
 * @param {string} appName a key of catalog.APPS
 * @param {{ address: string, runtime?: 'runc'|'lxc', strategy?: string, name?: string, copyRootfs?: boolean, log?: (line: string) => void }} options
 *   copyRootfs: ferry copies the bundle (rootfs and data) to h2 instead of treating it as shared storage (the bundle
 *   lies on a filesystem both sandbox hosts see): slower, and the rootfs is re-sent while frozen where it changed
 * @returns {Promise<MatrixRow>}
 */
async function moveApp(sb, appName, options) {
  const app = APPS[appName];
  if (!app) throw new Error(`no application ${appName}; known: ${Object.keys(APPS).join(', ')}`);
  const log = options.log ?? (() => undefined);
  const name = options.name ?? `app-${appName}-${process.pid}`;
  const built = debianRootfs(app.name, app.packages);
  if (built.buildMs > 0) log(`built the ${app.name} rootfs in ${Math.round(built.buildMs / 1000)} s`);
  const version = built.versions[app.versionOf] ?? '?';
  const ctx = { sb, name, address: options.address.split('/')[0], rootfs: built.dir, host: 'h1' };
  const runtime = RUNTIMES[options.runtime ?? 'runc'];
  // LXC containers live in each host's own lxcpath: ferry always copies their directory.
  // An application that holds file locks in its data (app.copyRootfs) cannot move with --shared-storage: ferry refuses.
  const copyRootfs = options.copyRootfs || options.runtime === 'lxc' || app.copyRootfs === true;
  const row = { app: app.name, version, kind: app.kind, runtime: options.runtime ?? 'runc', storage: copyRootfs ? 'copied' : 'shared', load: app.loadLabel, dataIntact: false, result: 'not run', detail: '' };
  try {
    try {
      runtime.start(sb, app, name, options.address, built.dir);
      await app.ready(ctx);
      if (app.seed) await app.seed(ctx);
    } catch (err) {
      row.result = `did not start: ${err.message}`;
      return row;
    }
    // Where the runtime's network is the daemon's to make on h2 (Docker), the trial checks it made the same one.
    const identityBefore = runtime.lanIdentity?.(sb, 'h1', name);
    const loadStartedAt = Date.now();
    const load = app.startLoad(ctx);
    let run;
    let loadEndedAt;
    try {
      await sleep(LOAD_BEFORE_MS);
      log(`${name}: migrating under load (${app.loadLabel})`);
      const shared = copyRootfs ? [] : ['--shared-storage'];
      // FERRY_APPS_AGENT_COMMAND: the destination's agent run another way, for a comparison (docs/network-switchover.md).
      const agent = process.env.FERRY_APPS_AGENT_COMMAND ? ['--agent-command', process.env.FERRY_APPS_AGENT_COMMAND] : [];
      run = await ferryOnHost(sb, 'h1', ['migrate', name, '--to', 'h2', '--strategy', options.strategy ?? 'auto', ...shared, ...agent, '--hosts-file', sb.hostsFile]);
      if (run.status === 0) {
        ctx.host = 'h2';
        await sleep(LOAD_AFTER_MS);
      }
    } finally {
      row.loadResult = await load.stop();
      loadEndedAt = Date.now();
    }
    Object.assign(row, { gapMs: Math.round(row.loadResult.maxLatencyMs), gapCapped: row.loadResult.maxLatencyCapped === true, load: `${app.loadLabel}: ${row.loadResult.opsPerSec} ops/s` });
    if (run.status !== 0) {
      row.result = `ferry failed: ${run.error?.code ?? `exit ${run.status}`}: ${run.error?.message ?? run.stderr.slice(-500)}`;
      row.error = run.error;
      return row;
    }
    const strategy = run.report.lazyRestore ? `${run.report.strategy}, lazy restore` : run.report.strategy;
    Object.assign(row, { strategy, frozenMs: run.report.downtimeMs, report: run.report });
    ctx.report = run.report; // its warnings, for verify
    // A check that cannot even ask the application is a failed row of the matrix, not a lost one.
    const verdict = await app.verify(ctx, row.loadResult).catch((err) => ({ ok: false, detail: `check failed: ${err.message}` }));
    row.dataIntact = verdict.ok;
    row.detail = verdict.detail;
    // The load must have run across the whole freeze, or its longest request says nothing about the move.
    const at = (type, phase) => run.events.find((e) => e.event === type && e.phase === phase)?.receivedAt;
    const frozenFrom = at('phase-start', 'freeze');
    const runningFrom = at('phase-end', 'restore') ?? at('phase-start', 'commit');
    const covered = frozenFrom !== undefined && runningFrom !== undefined && loadStartedAt < frozenFrom && loadEndedAt > runningFrom;
    const problems = [
      ...(covered ? [] : [`the load did not span the freeze (load ${loadStartedAt}-${loadEndedAt}, frozen ${frozenFrom}-${runningFrom})`]),
      ...(row.loadResult.ok ? [] : [`load tool: ${row.loadResult.errors.join('; ')}`]),
      ...(verdict.ok ? [] : [`data: ${verdict.detail}`]),
    ];
    const source = runtime.state(sb, 'h1', name);
    const destination = runtime.state(sb, 'h2', name);
    if (source.exists) problems.push('the container is still on h1');
    if (destination.state !== 'running') problems.push(`on h2 the container is ${destination.exists ? destination.state : 'missing'}`);
    const identityAfter = identityBefore && destination.state === 'running' ? runtime.lanIdentity(sb, 'h2', name) : identityBefore;
    if (identityAfter !== identityBefore) problems.push(`on the LAN it was ${identityBefore} on h1, ${identityAfter} on h2`);
    row.result = problems.length === 0 ? 'ok' : problems.join('; ');
    return row;
  } finally {
    runtime.remove(sb, name);
    // The committed migration's directory on h2 holds the container's bundle (its rootfs copy): ours, remove it.
    onHost(sb, 'h2', ['sh', '-c', 'grep -l -s "\\"name\\":\\"$1\\"" -r /var/lib/ferry/migrations --include migration.json | xargs -r -n1 dirname | xargs -r rm -rf', 'sh', name]);
  }
}

module.exports = { moveApp, LOAD_BEFORE_MS, LOAD_AFTER_MS };
