/**
 * Root filesystems of real applications, built from Debian's packages as shipped: `mmdebstrap --variant=minbase
 * --include=PACKAGES` (Debian's own installer, maintainer scripts included: users, default clusters, stock
 * configuration files), cached under /var/cache/ferry/apps, keyed by the suite and the package list. Daemons do not
 * start during the build (mmdebstrap installs a policy-rc.d that denies them). Documentation, manual pages and
 * translations are left out (dpkg path-exclude), as Debian's own slim images do.
 *
 * A cached rootfs is never run: a bundle takes a copy (bundle.ts). Builds of the same key wait for each other
 * (flock), and a build lands by rename, so a reader never sees half a rootfs. The .deb files are kept in
 * /var/cache/ferry/apps/debs between builds (sync-in/sync-out hooks), so a second list mostly installs.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const APPS_CACHE = process.env.FERRY_APPS_CACHE || '/var/cache/ferry/apps';
/** Bump when the recipe changes, so old caches are not reused. */
const RECIPE = 1;
const SOURCES = '/etc/apt/sources.list.d/debian.sources';
const EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*'];
const BUILD_TIMEOUT_MS = 15 * 60_000;

/**
 * @typedef {object} BuiltRootfs
 * @property {string} dir
 * @property {Record<string, string>} versions package -> version, as dpkg reports it inside the rootfs
 * @property {number} buildMs how long this call took (0 when it came from the cache)
 */

function suite() {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const codename = /^VERSION_CODENAME=(\w+)$/m.exec(osRelease)?.[1];
  if (!codename) throw new Error('cannot tell the Debian suite from /etc/os-release (VERSION_CODENAME)');
  return codename;
}

/** @param {readonly string[]} packages */
function rootfsKey(packages) {
  const list = [...new Set(packages)].sort();
  return createHash('sha256').update(JSON.stringify({ recipe: RECIPE, suite: suite(), list, excludes: EXCLUDES })).digest('hex').slice(0, 16);
}

/**
 * The cached rootfs of `packages`, built first if needed (minutes; the output goes to a log beside it).
 * @param {string} name @param {readonly string[]} packages @returns {BuiltRootfs}
 */
function debianRootfs(name, packages) {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`bad rootfs name ${name}`);
  for (const p of packages) if (!/^[a-z0-9][a-z0-9.+-]*$/.test(p)) throw new Error(`bad package name ${p}`);
  const home = join(APPS_CACHE, `${name}-${rootfsKey(packages)}`);
  const dir = join(home, 'rootfs');
  const marker = join(home, 'versions.tsv');
  const started = Date.now();
  if (existsSync(marker)) return { dir, versions: readVersions(marker), buildMs: 0 };
  const debs = join(APPS_CACHE, 'debs');
  mkdirSync(debs, { recursive: true, mode: 0o755 });
  mkdirSync(home, { recursive: true, mode: 0o755 });
  const log = join(home, 'build.log');
  const mirror = existsSync(SOURCES) ? [SOURCES] : [];
  // Under flock: a second builder of the same key waits, then finds the marker and builds nothing. The marker
  // (the package versions) is written last, after the rootfs has its final name.
  const script = [
    'set -e',
    'home=$1 tmp=$2 dir=$3; shift 3',
    '[ -e "$home/versions.tsv" ] && exit 0',
    'rm -rf "$tmp" "$dir"',
    '"$@"',
    'chroot "$tmp" dpkg-query -W -f \'${Package}\\t${Version}\\n\' > "$home/versions.tsv.tmp"',
    'mv "$tmp" "$dir"',
    'mv "$home/versions.tsv.tmp" "$home/versions.tsv"',
  ].join('\n');
  const argv = [
    'mmdebstrap',
    '--mode=root',
    '--variant=minbase',
    `--include=${packages.join(',')}`,
    '--dpkgopt=force-unsafe-io',
    ...EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    '--skip=download/empty',
    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
    // With manual pages excluded, a JRE's postinst (update-alternatives for java.1.gz) needs the directory itself.
    '--setup-hook=mkdir -p "$1"/usr/share/man/man1',
    `--setup-hook=sync-in ${debs} /var/cache/apt/archives/`,
    `--customize-hook=sync-out /var/cache/apt/archives ${debs}`,
    '--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb',
    suite(),
    `${dir}.tmp`,
    ...mirror,
  ];
  const r = spawnSync('flock', [join(home, 'build.lock'), 'sh', '-c', script, 'build', home, `${dir}.tmp`, dir, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 << 20,
  });
  writeFileSync(log, `${r.stdout || ''}${r.stderr || ''}`);
  if (r.status !== 0 || !existsSync(marker)) {
    const tail = `${r.stderr || ''}`.split('\n').slice(-15).join('\n');
    throw new Error(`mmdebstrap of ${name} (${packages.join(' ')}) failed (${r.status ?? r.signal}); log ${log}:\n${tail}`);
  }
  return { dir, versions: readVersions(marker), buildMs: Date.now() - started };
}

/** @param {string} path */
function readVersions(path) {
  /** @type {Record<string, string>} */
  const versions = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [pkg, version] = line.split('\t');
    if (pkg && version) versions[pkg] = version;
  }
  return versions;
}

module.exports = { APPS_CACHE, debianRootfs, rootfsKey };
