'use strict';
/**
 * Lab-only: on a machine whose root lacks CAP_SYS_RESOURCE (the project's VMs), CRIU 4.2.1 cannot dump a task that
 * runs as another user: `Can't get rlimit 0: Operation not permitted` (criu/cr-dump.c, prlimit64 on the task). Real
 * servers drop privileges (postgres, redis, nginx's workers, memcached, mosquitto), so none of them could move here.
 * installCriuShim() puts a `criu` first on the sandbox hosts' PATH (SANDBOX_DIR/bin, which runc and ferry on both
 * hosts use) that runs the machine's CRIU with criu-rlimit-shim.c preloaded: the shim answers that one refused read
 * from /proc/PID/limits and changes nothing else. On a machine whose root has the capability nothing is installed.
 * docs/compatibility.md says which rows needed it.
 */
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { APPS_CACHE } = require('../rootfs');

const CAP_SYS_RESOURCE = 24n;
const SOURCE = join(__dirname, 'criu-rlimit-shim.c');

/** Whether this process (root, as ferry and CRIU run) has CAP_SYS_RESOURCE in its effective set. */
function hasSysResource(status = readFileSync('/proc/self/status', 'utf8')) {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/** The machine's `criu` is provision-host.sh's wrapper: `exec LDSO --library-path LIBS CRIU "$@"`. */
function parseWrapper(text) {
  const m = /^exec (\S+ld-linux[^ ]*\.so\.\d+) --library-path (\S+) (\S+) "\$@"$/m.exec(text);
  return m ? { loader: m[1], libraryPath: m[2], criu: m[3] } : undefined;
}

/**
 * @param {{ dir: string }} sb the sandbox (its bin/ is first on the hosts' PATH)
 * @returns {{ installed: boolean, reason: string }}
 */
function installCriuShim(sb, systemCriu = '/usr/local/sbin/criu') {
  if (hasSysResource()) return { installed: false, reason: 'root has CAP_SYS_RESOURCE: CRIU reads rlimits itself' };
  const wrapper = existsSync(systemCriu) ? parseWrapper(readFileSync(systemCriu, 'utf8')) : undefined;
  if (!wrapper) throw new Error(`${systemCriu} is not provision-host.sh's CRIU wrapper: cannot preload the rlimit shim (see e2e/apps/lab/criu-shim.js)`);
  const source = readFileSync(SOURCE);
  const dir = join(APPS_CACHE, 'criu-shim');
  const lib = join(dir, `criu-rlimit-shim-${createHash('sha256').update(source).digest('hex').slice(0, 12)}.so`);
  if (!existsSync(lib)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const cc = spawnSync('gcc', ['-O2', '-shared', '-fPIC', '-o', `${lib}.tmp`, SOURCE, '-ldl'], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc of the CRIU rlimit shim failed: ${cc.stderr}`);
    spawnSync('mv', [`${lib}.tmp`, lib]);
  }
  mkdirSync(join(sb.dir, 'bin'), { recursive: true });
  writeFileSync(
    join(sb.dir, 'bin', 'criu'),
    `#!/bin/sh\n# e2e/apps/lab/criu-shim.js: the machine's CRIU with the rlimit shim (lab-only: root lacks CAP_SYS_RESOURCE)\nexec ${wrapper.loader} --preload ${lib} --library-path ${wrapper.libraryPath} ${wrapper.criu} "$@"\n`,
    { mode: 0o755 },
  );
  return { installed: true, reason: "root lacks CAP_SYS_RESOURCE: CRIU reads a non-root task's rlimits from /proc/PID/limits (lab shim)" };
}

module.exports = { installCriuShim, hasSysResource, parseWrapper };
