'use strict';
/**
 * The two sandbox hosts (scripts/sandbox-hosts.sh) as the application trials use them, in plain JavaScript so the
 * benchmark (bench/*.js) can drive the same trials: a command inside a host, `ferry ... --json` there (the CLI, as
 * the e2e tests drive it, never ferry's internals), and a load tool on the containers' LAN, outside both hosts.
 */
const { spawn, spawnSync } = require('node:child_process');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'sandbox-hosts.sh');
const HOST_DOCKER_HOST = 'unix:///run/ferry/docker.sock';

/**
 * @typedef {object} Sandbox
 * @property {string} name    prefix of its namespaces (FERRY_SANDBOX_NAME)
 * @property {string} dir     its directory (FERRY_SANDBOX_DIR)
 * @property {string} hostsFile
 * @property {string} lanNetns the containers' LAN, where clients run
 * @property {string} uplink  PATH:BRIDGE for FERRY_NETNS_UPLINK
 */

/** @param {string} name @param {string} [dir] @returns {Sandbox} */
function sandboxNamed(name, dir = `/run/ferry-sandbox-${name}`) {
  return { name, dir, hostsFile: join(dir, 'hosts.yaml'), lanNetns: `/run/netns/${name}-lan`, uplink: `${dir}/lan.netns:br-lan` };
}

/** @param {Sandbox} sb */
function scriptEnv(sb) {
  return { ...process.env, FERRY_SANDBOX_DIR: sb.dir, FERRY_SANDBOX_NAME: sb.name };
}

/** @param {Sandbox} sb @param {'h1'|'h2'} host @param {string[]} argv */
function hostArgv(sb, host, argv) {
  return [SCRIPT, 'exec', host, '--', 'env', `FERRY_NETNS_UPLINK=${sb.uplink}`, `DOCKER_HOST=${HOST_DOCKER_HOST}`, ...argv];
}

/**
 * argv inside host h1 or h2; never throws.
 * @param {Sandbox} sb @param {'h1'|'h2'} host @param {string[]} argv
 * @param {{ timeoutMs?: number, input?: Buffer|string }} [options]
 */
function onHost(sb, host, argv, options = {}) {
  const r = spawnSync('bash', hostArgv(sb, host, argv), {
    env: scriptEnv(sb),
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 << 20,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** onHost, but a failure throws with the command's stderr. */
function mustOnHost(sb, host, argv, options = {}) {
  const r = onHost(sb, host, argv, options);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} on ${host} failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * `ferry ARGS --json` on a host: its exit status, the events it printed, the report or the error.
 * @param {Sandbox} sb @param {'h1'|'h2'} host @param {string[]} args
 * @returns {Promise<{ status: number|null, stdout: string, stderr: string, events: object[], report?: any, error?: { code: string, message: string, hint?: string } }>}
 */
function ferryOnHost(sb, host, args) {
  return new Promise((done) => {
    const child = spawn('bash', hostArgv(sb, host, ['ferry', ...args, '--json']), { env: scriptEnv(sb) });
    let stdout = '';
    let stderr = '';
    let pending = '';
    /** When each event line arrived here (ms since the epoch): the trial lines the load up against the freeze. */
    const arrivals = [];
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => {
      stderr += c;
      pending += c;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) arrivals.push(Date.now());
    });
    child.on('close', (status) => {
      const parse = (text, stamps) =>
        text.split('\n').filter((line) => line.startsWith('{')).flatMap((line, i) => {
          try {
            return [{ ...JSON.parse(line), ...(stamps ? { receivedAt: stamps[i] } : {}) }];
          } catch {
            return [];
          }
        });
      const events = parse(stderr, arrivals);
      const objects = [...parse(stdout), ...events];
      const report = objects.find((o) => o.event === 'report')?.report;
      const error = objects.find((o) => o.event === 'error')?.error;
      done({ status, stdout, stderr, events, report, error });
    });
  });
}

/**
 * A load tool on the containers' LAN (outside both hosts, own mount namespace), run from an application's cached
 * rootfs (chroot): the client version that Debian ships with the server. /dev and /proc of the machine are bound
 * into the rootfs, and a tmpfs is mounted on its /tmp, inside that private mount namespace only: the cached rootfs
 * is never written.
 * @param {Sandbox} sb @param {string} rootfs @param {string[]} argv
 */
function lanArgv(sb, rootfs, argv) {
  const script = 'mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" && mount -t tmpfs tmpfs "$1/tmp" && exec chroot "$@"';
  // No --fork: nsenter, unshare, sh and chroot exec one another, so a signal to the child reaches the tool itself.
  return ['nsenter', `--net=${sb.lanNetns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'lan-client', rootfs, ...argv];
}

/** Starts a LAN client; the caller collects its output and ends it. */
function spawnOnLan(sb, rootfs, argv) {
  const [file, ...args] = lanArgv(sb, rootfs, argv);
  return spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs a LAN client to its end. */
function runOnLan(sb, rootfs, argv, options = {}) {
  const [file, ...args] = lanArgv(sb, rootfs, argv);
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 << 20, ...(options.input === undefined ? {} : { input: options.input }) });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Everything a child wrote, and its exit, as one promise. */
function collect(child) {
  return new Promise((done) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.on('close', (status, signal) => done({ status, signal, stdout, stderr }));
  });
}

module.exports = { ROOT, SCRIPT, sandboxNamed, onHost, mustOnHost, ferryOnHost, spawnOnLan, runOnLan, collect };
