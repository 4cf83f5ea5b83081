'use strict';
/** The applications of the compatibility matrix (docs/compatibility.md), by name. Adding one: see that page. */
const APPS = Object.fromEntries(['postgresql', 'nginx', 'redis', 'memcached', 'mosquitto', 'tomcat', 'supervisor'].map((n) => require(`./${n}`)).map((app) => [app.name, app]));

module.exports = { APPS };
