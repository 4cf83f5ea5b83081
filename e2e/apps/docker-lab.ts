/**
 * The lab the Docker rows of the application matrix need (docker.apps.ts), set up once per suite and taken down
 * after it; none of it is ferry's:
 * - a dockerd in each sandbox host (e2e/lib/docker-hosts.ts);
 * - a veth from each host into the sandbox LAN's bridge, the parent of a Docker macvlan network of the same name
 *   and subnet on both daemons (MACVLAN_NETWORK): a container started on it with a fixed --ip and --mac-address is
 *   on the LAN where the load tools run, and Docker gives its copy on h2 the same address and MAC there;
 * - `tcp-established` in runc's CRIU configuration of both hosts (/etc/criu/runc.conf, private to each sandbox host):
 *   Docker's restore cannot pass the flag to CRIU (docs/docker.md), and the load tools hold connections across the
 *   move. Whatever the file held before is put back at the end.
 */
import { spawnSync } from 'node:child_process';
import { startHostDockerd, type HostDockerd } from '../lib/docker-hosts';
import { SANDBOX_NAME, onHost } from '../lib/sandbox';

/* eslint-disable @typescript-eslint/no-require-imports -- plain JavaScript shared with the benchmark (bench/) */
const { DOCKER_LAN, MACVLAN_NETWORK } = require('./runtimes');
/* eslint-enable @typescript-eslint/no-require-imports */

const HOSTS = ['h1', 'h2'] as const;
/** The host's end of its veth to the LAN (the macvlan parent), and the LAN's end (a port of br-lan). */
const PARENT = 'dkvlan';
const lanEnd = (host: string) => `dkvlan-${host}`;
const RUNC_CONF = '/etc/criu/runc.conf';

export interface DockerLab {
  daemons: HostDockerd[];
  down(): Promise<void>;
}

function ip(argv: string[]): void {
  const r = spawnSync('ip', argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${argv.join(' ')} failed: ${r.stderr.trim()}`);
}

function mustOn(host: 'h1' | 'h2', argv: string[]): string {
  const r = onHost(host, argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} on ${host} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

export async function dockerLabUp(): Promise<DockerLab> {
  const daemons: HostDockerd[] = [];
  /** The runc.conf each host had (undefined: none), to put back. */
  const runcConf = new Map<'h1' | 'h2', string | undefined>();
  const lab: DockerLab = {
    daemons,
    async down() {
      for (const d of daemons.splice(0)) await d.stop();
      for (const [host, text] of runcConf) {
        onHost(host, ['sh', '-c', text === undefined ? 'rm -f "$1"' : 'printf "%s" "$2" > "$1"', 'sh', RUNC_CONF, text ?? '']);
      }
      for (const host of HOSTS) spawnSync('ip', ['-n', `${SANDBOX_NAME}-lan`, 'link', 'del', lanEnd(host)], { stdio: 'ignore' });
    },
  };
  try {
    for (const host of HOSTS) {
      ip(['-n', `${SANDBOX_NAME}-lan`, 'link', 'add', lanEnd(host), 'type', 'veth', 'peer', 'name', PARENT, 'netns', `${SANDBOX_NAME}-${host}`]);
      ip(['-n', `${SANDBOX_NAME}-lan`, 'link', 'set', lanEnd(host), 'master', 'br-lan', 'up']);
      mustOn(host, ['ip', 'link', 'set', PARENT, 'up']);
      const conf = onHost(host, ['cat', RUNC_CONF]);
      runcConf.set(host, conf.status === 0 ? conf.stdout : undefined);
      mustOn(host, ['sh', '-c', 'mkdir -p /etc/criu && printf "%s\\n" "# ferry e2e/apps (docker-lab.ts): Docker restores established TCP connections" tcp-established >> "$1"', 'sh', RUNC_CONF]);
      const daemon = await startHostDockerd(host);
      daemons.push(daemon);
      daemon.docker(['network', 'create', '--driver', 'macvlan', '--subnet', DOCKER_LAN.subnet, '--gateway', DOCKER_LAN.gateway, '--opt', `parent=${PARENT}`, MACVLAN_NETWORK]);
    }
    return lab;
  } catch (err) {
    await lab.down();
    throw err;
  }
}
