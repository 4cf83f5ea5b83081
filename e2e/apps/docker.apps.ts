/**
 * Applications as Docker containers (runtimes.js: the same Debian rootfs imported as an image, the container on a
 * macvlan network on the sandbox LAN with a fixed address and MAC; docker-lab.ts), moved with `ferry migrate
 * --strategy auto` under their own load (apps-suite.ts). FERRY_DOCKER_APPS picks others.
 */
import { appsSuite } from './apps-suite';

appsSuite('docker', (process.env.FERRY_DOCKER_APPS ?? 'redis,nginx').split(',').filter(Boolean), 170);
