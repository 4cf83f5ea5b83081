/**
 * Two of the applications as LXC containers (runtimes.js: the same Debian rootfs in LXC's lxcpath, a veth on the
 * hosts' lxcbr0), moved with `ferry migrate --strategy auto` under their own load (apps-suite.ts). FERRY_LXC_APPS
 * picks others.
 */
import { appsSuite } from './apps-suite';

appsSuite('lxc', (process.env.FERRY_LXC_APPS ?? 'redis,nginx').split(',').filter(Boolean), 110);
