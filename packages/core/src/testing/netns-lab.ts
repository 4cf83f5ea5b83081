/**
 * Two network namespaces for network tests (root): a "LAN" with a bridge where clients live, and a "server"
 * namespace plugged into that bridge with a veth, as a restored container's namespace is on a destination host.
 * Also runs processes inside them (`nsenter --net`), tracked for clean-up.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NetnsLab {
  lanPath: string;
  serverPath: string;
  /** The bridge end of the server's veth, in the LAN namespace. */
  bridgePort: string;
  clientAddress: string;
  serverAddress: string;
  /** A process inside one of the namespaces; killed by remove() if still running. */
  spawnIn(nsPath: string, argv: readonly string[]): ChildProcess;
  /** A command's stdout inside a namespace. */
  exec(nsPath: string, argv: readonly string[]): Promise<string>;
  /** Kills what spawnIn started, deletes both namespaces. Idempotent. */
  remove(): Promise<void>;
}

/** `prefix`: a few letters that keep one checkout's namespaces apart from another's (FERRY_E2E_PREFIX). */
export async function createNetnsLab(prefix: string): Promise<NetnsLab> {
  const tag = `${prefix}-lab-${randomBytes(3).toString('hex')}`;
  const lan = `${tag}-lan`;
  const server = `${tag}-srv`;
  const bridgePort = `v${randomBytes(5).toString('hex')}`;
  const children = new Set<ChildProcess>();
  const ip = (args: string[]) => run('ip', args);
  const created: string[] = [];
  const remove = async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.clear();
    for (const name of created.splice(0).reverse()) await ip(['netns', 'delete', name]).catch(() => undefined);
  };
  try {
    for (const name of [lan, server]) {
      await ip(['netns', 'add', name]);
      created.push(name);
      await ip(['-n', name, 'link', 'set', 'lo', 'up']);
    }
    await ip(['-n', lan, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', lan, 'addr', 'add', '10.123.0.1/24', 'dev', 'br0']);
    await ip(['-n', lan, 'link', 'set', 'br0', 'up']);
    await ip(['-n', lan, 'link', 'add', bridgePort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server]);
    await ip(['-n', lan, 'link', 'set', bridgePort, 'master', 'br0', 'up']);
    // No IPv6 on the server's link: its router solicitations and MLD reports would come and go at random times.
    await run('nsenter', [`--net=/run/netns/${server}`, 'sysctl', '-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    await ip(['-n', server, 'addr', 'add', '10.123.0.2/24', 'dev', 'eth0']);
    await ip(['-n', server, 'link', 'set', 'eth0', 'up']);
  } catch (err) {
    await remove();
    throw err;
  }
  const path = (name: string) => `/run/netns/${name}`;
  return {
    lanPath: path(lan),
    serverPath: path(server),
    bridgePort,
    clientAddress: '10.123.0.1',
    serverAddress: '10.123.0.2',
    spawnIn(nsPath, argv) {
      const child = spawn('nsenter', [`--net=${nsPath}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    async exec(nsPath, argv) {
      return (await run('nsenter', [`--net=${nsPath}`, ...argv], { encoding: 'utf8' })).stdout;
    },
    remove,
  };
}

/**
 * A counter of the namespace as seen from inside: /proc/net/snmp for Tcp and Udp (e.g. 'Tcp', 'InSegs'),
 * /proc/net/netstat for TcpExt (e.g. 'TcpExt', 'TCPTimeouts': retransmission timers that fired).
 */
export async function snmpCounter(lab: NetnsLab, nsPath: string, group: 'Tcp' | 'Udp' | 'TcpExt', name: string): Promise<number> {
  const file = group === 'TcpExt' ? '/proc/net/netstat' : '/proc/net/snmp';
  const lines = (await lab.exec(nsPath, ['cat', file])).split('\n').filter((l) => l.startsWith(`${group}:`));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf(name)]);
}

/** Lines a child prints on stdout, kept as they come; waitFor() resolves with the first (or next) match. */
export class LineLog {
  readonly lines: string[] = [];
  #waiters: { re: RegExp; from: number; resolve: (line: string) => void }[] = [];

  constructor(child: ChildProcess) {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        for (const w of [...this.#waiters]) {
          if (this.lines.length - 1 >= w.from && w.re.test(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
  }

  /**
   * The first line matching `re` at index >= from (default: any line so far or later). Rejects after timeoutMs: a
   * safety net for a broken test, never what decides a pass.
   */
  waitFor(re: RegExp, { from = 0, timeoutMs = 30_000 }: { from?: number; timeoutMs?: number } = {}): Promise<string> {
    const found = this.lines.slice(from).find((l) => re.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; got: ${this.lines.slice(-5).join(' | ')}`)), timeoutMs);
      this.#waiters.push({ re, from, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }
}

/** Path of a test program in fixtures/net (run with node). */
export function netFixture(name: 'echo-server' | 'ping-client' | 'udp-sink' | 'udp-send'): string {
  return join(__dirname, '..', '..', '..', '..', 'fixtures', 'net', `${name}.js`);
}
