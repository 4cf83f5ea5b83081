'use strict';
/**
 * Apache Tomcat 10 on OpenJDK 17 (a JVM service), as Debian ships it: stock /etc/tomcat10 (the HTTP connector on
 * 8080), the ROOT webapp the package installs, run as its systemd unit does (`sh /usr/libexec/tomcat10/tomcat-start.sh`
 * as user tomcat with the unit's CATALINA_* and JAVA_OPTS). Load: wrk over keep-alive connections until stopped.
 * Data: the default page, byte for byte, before and after; no socket error, no non-2xx answer.
 */
const { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { idsOf } = require('../bundle');
const { webServerChecks } = require('./wrk');

const web = webServerChecks(8080, 16);

module.exports = {
  name: 'tomcat',
  kind: 'JVM service (Java servlet container)',
  packages: ['tomcat10', 'wrk'],
  versionOf: 'tomcat10',
  port: 8080,
  run: {
    args: ['/bin/sh', '/usr/libexec/tomcat10/tomcat-start.sh'],
    user: 'tomcat',
    env: ['CATALINA_HOME=/usr/share/tomcat10', 'CATALINA_BASE=/var/lib/tomcat10', 'CATALINA_TMPDIR=/tmp', 'JAVA_OPTS=-Djava.awt.headless=true'],
  },
  // Copied, not --shared-storage: the JVM holds file locks in its rootfs, which ferry refuses to move on shared storage.
  copyRootfs: true,
  deviations: 'none',
  prepare(rootfs) {
    // The unit's CacheDirectory=tomcat10 and its ExecStartPre (tomcat-update-policy.sh: policy.d concatenated).
    const cache = join(rootfs, 'var', 'cache', 'tomcat10');
    mkdirSync(cache, { recursive: true, mode: 0o750 });
    const policyDir = join(rootfs, 'etc', 'tomcat10', 'policy.d');
    const policy = readdirSync(policyDir).sort().map((f) => readFileSync(join(policyDir, f), 'utf8')).join('');
    writeFileSync(join(cache, 'catalina.policy'), policy);
    const { uid, gid } = idsOf(rootfs, 'tomcat');
    chownSync(cache, uid, gid);
  },
  ...web,
  // The JVM starts slowly on a busy machine.
  ready: (ctx) => web.ready(ctx, 180_000),
};
