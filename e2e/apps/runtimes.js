'use strict';
/**
 * How a trial (trial.js) starts, inspects and removes an application container in each runtime ferry moves:
 * - runc: the bundle (bundle.js) run by container-ctl.js on h1, its netns on the LAN;
 * - lxc: the same prepared rootfs in LXC's default lxcpath of h1 (/var/lib/lxc/NAME, private to the host), a veth on
 *   the host's lxcbr0 (which the sandbox plugs into the LAN), the server as lxc.init.cmd with its user's ids.
 */
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
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
};

module.exports = { RUNTIMES, lxcConfig, lxcInitScript };
