'use strict';
/**
 * How a trial (trial.js) starts, inspects and removes an application container in each runtime ferry moves:
 * - runc: the bundle (bundle.js) run by container-ctl.js on h1, its netns on the LAN;
 * - lxc: the same prepared rootfs in LXC's default lxcpath of h1 (/var/lib/lxc/NAME, private to the host), a veth on
 *   the host's lxcbr0 (which the sandbox plugs into the LAN), the server as lxc.init.cmd with its user's ids.
 * - docker: the same prepared rootfs `docker import`ed as an image into h1's dockerd and loaded into h2's (same image
 *   id, as a registry pull on both would give), the container on the macvlan network that docker-lab.ts gives both
 *   daemons, with a fixed --ip and --mac-address, the server as its command with its user's ids.
 */
const { spawnSync } = require('node:child_process');
const { rmSync, writeFileSync } = require('node:fs');
const { basename, dirname, join } = require('node:path');
const { BUNDLES, idsOf, writeAppBundle, removeAppBundle } = require('./bundle');
const { mustOnHost, onHost } = require('./sandbox-access');

const E2E_BIN = join(__dirname, '..', 'bin');
const CONTAINER_CTL = join(E2E_BIN, 'container-ctl.js');
const LXC_CTL = join(E2E_BIN, 'lxc-ctl.js');

const lastJson = (text) => JSON.parse(text.trim().split('\n').at(-1) || '{}');

/** A locally administered MAC from the IPv4 address: the same wherever the container runs. */
function macFor(address) {
  return ['02', 'fe', ...address.split('/')[0].split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** A shell word for argv element `a` (single quotes, inner ones closed and escaped). */
function shellWord(a) {
  return /^[\w./=:,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/**
 * lxc.init.cmd is split on blanks without quoting (nginx's `-g "daemon off;"` would fall apart), so the command goes
 * into a two-line script in the rootfs that execs it: the server is still the container's init.
 */
const LXC_INIT = '/usr/local/sbin/ferry-app-init';
function lxcInitScript(args) {
  return `#!/bin/sh\n# written by ferry's e2e/apps (runtimes.js): the server's command, exec'd\nexec ${args.map(shellWord).join(' ')}\n`;
}

/** The LXC config of an application: what CRIU can restore (docs/lxc.md) plus the app's command, user and env. */
function lxcConfig(app, name, rootfs, address, dir) {
  const { uid, gid, additionalGids } = idsOf(rootfs, app.run.user ?? 'root');
  return [
    `lxc.uts.name = ${name}`,
    `lxc.rootfs.path = dir:${dir}/rootfs`,
    'lxc.net.0.type = veth',
    'lxc.net.0.link = lxcbr0',
    'lxc.net.0.name = eth0',
    'lxc.net.0.flags = up',
    `lxc.net.0.hwaddr = ${macFor(address)}`,
    `lxc.net.0.ipv4.address = ${address}`,
    'lxc.tty.max = 0',
    'lxc.pty.max = 0',
    'lxc.console.path = none',
    'lxc.mount.auto = proc:mixed sys:mixed',
    'lxc.autodev = 1',
    'lxc.mount.entry = tmpfs dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0',
    `lxc.init.uid = ${uid}`,
    `lxc.init.gid = ${gid}`,
    ...(additionalGids.length ? [`lxc.init.groups = ${additionalGids.join(',')}`] : []),
    `lxc.init.cwd = ${app.run.cwd ?? '/'}`,
    'lxc.environment = PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'lxc.environment = LANG=C.UTF-8',
    ...(app.run.env ?? []).map((e) => `lxc.environment = ${e}`),
    `lxc.init.cmd = ${LXC_INIT}`,
    '',
  ].join('\n');
}

/** The Docker network both hosts' daemons have (docker-lab.ts), a macvlan on the sandbox LAN (10.77.0.0/24). */
const MACVLAN_NETWORK = 'ferry-lan';
const DOCKER_LAN = { subnet: '10.77.0.0/24', gateway: '10.77.0.1' };
const DOCKER = '/usr/bin/docker';

/**
 * The image of an application, named for its cached rootfs (which names the package list): imported on h1 from the
 * prepared rootfs, then `docker save` there and `docker load` on h2 (through a file in the staging directory, which
 * both hosts see). Kept for the daemons' lifetime: the next trial of the same application reuses it.
 */
function dockerImage(sb, app, name, cachedRootfs) {
  const image = `ferry-apps-${app.name}:${basename(dirname(cachedRootfs)).split('-').at(-1)}`;
  if (onHost(sb, 'h1', [DOCKER, 'image', 'inspect', image]).status === 0) return image;
  const staged = writeAppBundle(app, name, cachedRootfs);
  const tar = join(staged.dir, 'image.tar');
  try {
    const pack = spawnSync('tar', ['-C', staged.rootfs, '--numeric-owner', '-cf', tar, '.'], { encoding: 'utf8' });
    if (pack.status !== 0) throw new Error(`tar of ${staged.rootfs} failed: ${pack.stderr}`);
    mustOnHost(sb, 'h1', [DOCKER, 'import', tar, image], { timeoutMs: 600_000 });
    rmSync(tar);
    mustOnHost(sb, 'h1', [DOCKER, 'save', '-o', tar, image], { timeoutMs: 600_000 });
    mustOnHost(sb, 'h2', [DOCKER, 'load', '-i', tar], { timeoutMs: 600_000 });
    return image;
  } finally {
    removeAppBundle(name);
  }
}

/** `docker run` argv of an application: its command, user and groups, environment and working directory. */
function dockerRunArgv(app, name, image, address, rootfs) {
  const { uid, gid, additionalGids } = idsOf(rootfs, app.run.user ?? 'root');
  return [
    'run', '-d', '--name', name, '--hostname', name,
    '--network', MACVLAN_NETWORK, '--ip', address.split('/')[0], '--mac-address', macFor(address),
    '--user', `${uid}:${gid}`, ...additionalGids.flatMap((g) => ['--group-add', String(g)]),
    '--ulimit', 'nofile=16384:16384',
    '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--env', 'LANG=C.UTF-8',
    ...(app.run.env ?? []).flatMap((e) => ['--env', e]),
    '--workdir', app.run.cwd ?? '/',
    image, ...app.run.args,
  ];
}

const RUNTIMES = {
  runc: {
    start(sb, app, name, address, cachedRootfs) {
      writeAppBundle(app, name, cachedRootfs);
      lastJson(mustOnHost(sb, 'h1', ['node', CONTAINER_CTL, 'run', name, '--bundle', join(BUNDLES, name), '--address', address]));
    },
    /** @returns {{ exists: boolean, state?: string }} */
    state: (sb, host, name) => lastJson(mustOnHost(sb, host, ['node', CONTAINER_CTL, 'state', name])),
    remove(sb, name) {
      for (const host of ['h1', 'h2']) onHost(sb, host, ['node', CONTAINER_CTL, 'remove', name]);
      removeAppBundle(name);
    },
  },
  lxc: {
    start(sb, app, name, address, cachedRootfs) {
      // Prepared outside (the recipe edits files), then copied into h1's private /var/lib/lxc.
      const staged = writeAppBundle(app, name, cachedRootfs);
      writeFileSync(join(staged.rootfs, LXC_INIT), lxcInitScript(app.run.args), { mode: 0o755 });
      const dir = `/var/lib/lxc/${name}`;
      const config = lxcConfig(app, name, staged.rootfs, address, dir);
      mustOnHost(sb, 'h1', ['sh', '-c', 'mkdir -m 0770 "$1" && cp -a "$2" "$1/rootfs" && cat > "$1/config"', 'sh', dir, staged.rootfs], { input: config });
      removeAppBundle(name);
      mustOnHost(sb, 'h1', ['lxc-start', '-n', name, '-o', `/var/lib/lxc/${name}.start.log`, '-l', 'ERROR']);
    },
    state(sb, host, name) {
      const r = onHost(sb, host, ['lxc-info', '-n', name, '-s', '-H']);
      return r.status === 0 ? { exists: true, state: r.stdout.trim().toLowerCase() } : { exists: false };
    },
    remove(sb, name) {
      for (const host of ['h1', 'h2']) onHost(sb, host, ['node', LXC_CTL, 'remove', name]);
      removeAppBundle(name);
    },
  },
  docker: {
    start(sb, app, name, address, cachedRootfs) {
      const image = dockerImage(sb, app, name, cachedRootfs);
      mustOnHost(sb, 'h1', [DOCKER, ...dockerRunArgv(app, name, image, address, cachedRootfs)]);
    },
    state(sb, host, name) {
      const r = onHost(sb, host, [DOCKER, 'inspect', '-f', '{{.State.Status}}', name]);
      return r.status === 0 ? { exists: true, state: r.stdout.trim() } : { exists: false };
    },
    /** The container's LAN interface as its network namespace has it: "MAC ADDRESS/PREFIX" (the trial compares). */
    lanIdentity(sb, host, name) {
      // ip, not /sys/class/net: sysfs shows the namespace of whoever mounted it (the host's).
      const script = 'pid=$(/usr/bin/docker inspect -f "{{.State.Pid}}" "$1") && nsenter -t "$pid" -n ip -o -4 addr show dev eth0 && nsenter -t "$pid" -n ip -o link show dev eth0';
      const out = mustOnHost(sb, host, ['sh', '-c', script, 'sh', name]);
      const address = /inet (\S+)/.exec(out)?.[1];
      const mac = /link\/ether (\S+)/.exec(out)?.[1];
      return `${mac ?? '?'} ${address ?? '?'}`;
    },
    remove(sb, name) {
      for (const host of ['h1', 'h2']) onHost(sb, host, [DOCKER, 'rm', '-f', name]);
      removeAppBundle(name);
    },
  },
};

module.exports = { RUNTIMES, MACVLAN_NETWORK, DOCKER_LAN, lxcConfig, lxcInitScript, macFor };
