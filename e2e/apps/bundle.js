'use strict';
/**
 * runc bundles of real applications: a private copy of the application's cached Debian rootfs (rootfs.js) inside
 * the bundle, as OCI bundles have it (so `ferry migrate` carries the rootfs, the application's data included, to
 * the destination like any bundle: copied while it runs, changed files re-sent while frozen), and a config.json
 * that runs the server as Debian's service unit would: same command, same user, the stock configuration files.
 * The network namespace is /run/netns/ferry-ct-NAME, which container-ctl.js `run` creates on the sandbox LAN.
 */
const { spawnSync } = require('node:child_process');
const { mkdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { APPS_CACHE } = require('./rootfs');

/** Docker's default capability set: what a server image expects when it starts as root and drops privileges. */
const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];
const BUNDLES = join(APPS_CACHE, 'run');
const USERNS = process.env.FERRY_APPS_USERNS === '1';

/**
 * uid, gid and supplementary groups of `user` in the rootfs's /etc/passwd and /etc/group (as a login would get
 * them: postgres reads its TLS key through the ssl-cert group).
 * @param {string} rootfs @param {string} user
 */
function idsOf(rootfs, user) {
  const line = readFileSync(join(rootfs, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.split(':')[0] === user);
  if (!line) throw new Error(`no user ${user} in ${rootfs}/etc/passwd`);
  const [, , uid, gid] = line.split(':');
  const additionalGids = readFileSync(join(rootfs, 'etc', 'group'), 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && f[3].split(',').includes(user))
    .map((f) => Number(f[2]));
  return { uid: Number(uid), gid: Number(gid), additionalGids };
}

/**
 * The OCI config of an application container.
 * @param {{ name: string, rootfs: string, netnsPath: string, args: string[], user?: string, env?: string[], cwd?: string }} input
 */
function appConfig(input) {
  const { uid, gid, additionalGids } = idsOf(input.rootfs, input.user ?? 'root');
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid, gid, ...(additionalGids.length ? { additionalGids } : {}) },
      args: input.args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...(input.env ?? [])],
      cwd: input.cwd ?? '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 16384, soft: 16384 }],
    },
    root: { path: 'rootfs', readonly: false },
    hostname: input.name,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=262144k'] },
      // In a user namespace sysfs cannot be mounted (the network namespace is not the user namespace's): a bind.
      USERNS
        ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
        : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      cgroupsPath: `/ferry-apps/${input.name}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network', path: input.netnsPath }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, ...(USERNS ? [{ type: 'user' }] : [])],
      ...(USERNS ? { uidMappings: [{ containerID: 0, hostID: 0, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 0, size: 65536 }] } : {}),
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/**
 * A fresh bundle for container `name` of `app` (catalog.js) from its cached rootfs: BUNDLES/NAME/{rootfs,config.json}.
 * @param {{ run: { args: string[], user?: string, env?: string[], cwd?: string }, prepare?: (rootfs: string) => void }} app
 * @param {string} name @param {string} cachedRootfs
 */
function writeAppBundle(app, name, cachedRootfs) {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad container name ${name}`);
  const dir = join(BUNDLES, name);
  removeAppBundle(name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rootfs = join(dir, 'rootfs');
  const cp = spawnSync('cp', ['-a', cachedRootfs, rootfs], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`cp -a ${cachedRootfs} ${rootfs} failed: ${cp.stderr}`);
  app.prepare?.(rootfs);
  const config = appConfig({ name, rootfs, netnsPath: `/run/netns/ferry-ct-${name}`, ...app.run });
  // Relative, as `runc spec` writes it. Copied, the destination's copy then names its own rootfs (an absolute path
  // would send it back to the source's, which both sandbox hosts see); with --shared-storage ferry resolves it
  // against the source's bundle (core's runc-shared-bundle.ts).
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { dir, rootfs, config };
}

/** Removes a bundle this module wrote (never anything mounted: runc has deleted the container by then). */
function removeAppBundle(name) {
  rmSync(join(BUNDLES, name), { recursive: true, force: true });
}

module.exports = { BUNDLES, appConfig, writeAppBundle, removeAppBundle, idsOf };
