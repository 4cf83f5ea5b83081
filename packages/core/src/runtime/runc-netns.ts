/**
 * Network namespaces of runc containers. runc does not let CRIU dump a network namespace the container joined by
 * path (it is external to CRIU: `net[INODE]:extRootNetNS`), so ferry records its interfaces at checkpoint and, on a
 * host where that path does not exist, re-creates a namespace with the same interface names and addresses before
 * restoring (`--tcp-established` then finds the connection's addresses again).
 *
 * What is re-created: lo (up) and every interface that had a non-link-local address, with the same name, MAC, MTU
 * and addresses. Routes other than the connected ones, and what the interface was plugged into (a bridge, a veth
 * peer on the host) are the destination's plumbing, not the adapter's: the interfaces are dummies, or veth pairs
 * with the peer left inside the namespace when the kernel has no dummy driver (CONFIG_DUMMY is off on ferry's lab
 * machines).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { NetworkAddress } from '../model/container';
import { FerryError } from '../model/ferry-error';

const run = promisify(execFile);

/** Named network namespaces live here (`ip netns add NAME`). */
export const NETNS_DIR = '/run/netns';

export interface NetnsInterface {
  ifname: string;
  /** MAC address, for ethernet-like links. */
  mac?: string;
  mtu?: number;
  addresses: NetworkAddress[];
}

export interface NetnsTools {
  ipPath: string;
  nsenterPath: string;
}

/** The addresses in a network namespace and how many established TCP connections it holds (clone checks). */
export async function netnsTies(tools: NetnsTools, nsPath: string): Promise<{ addresses: string[]; establishedTcp: number }> {
  const interfaces = await readNetnsInterfaces(tools, nsPath);
  const { stdout } = await run(tools.nsenterPath, [`--net=${nsPath}`, 'ss', '-Htn', 'state', 'established']);
  return {
    addresses: interfaces.flatMap((i) => i.addresses.map((a) => a.address)),
    establishedTcp: stdout.split('\n').filter((l) => l.trim()).length,
  };
}

/**
 * Where re-created interfaces plug in on this host: a bridge in another network namespace (the host's LAN). Each
 * interface becomes a veth whose peer joins the bridge, so the container is reachable at its old address and MAC.
 */
export interface NetnsUplink {
  /** Path of the network namespace that holds the bridge (/run/netns/NAME, or any nsfs bind mount). */
  netnsPath: string;
  bridge: string;
}

/** "PATH:BRIDGE", as the CLI reads it from FERRY_NETNS_UPLINK. */
export function parseNetnsUplink(text: string): NetnsUplink {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `netns uplink "${text}" is not PATH:BRIDGE`, {
      hint: 'Set FERRY_NETNS_UPLINK to the network namespace file and bridge name, e.g. /run/netns/lan:br0.',
    });
  }
  return { netnsPath: text.slice(0, colon), bridge: text.slice(colon + 1) };
}

interface IpAddrEntry {
  ifname?: string;
  mtu?: number;
  link_type?: string;
  address?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

/**
 * Interfaces worth re-creating from `ip -j addr show` output: not lo, and with at least one address that is not
 * link-local (the kernel makes those itself).
 */
export function parseIpAddrJson(text: string): NetnsInterface[] {
  const entries = JSON.parse(text.trim() || '[]') as IpAddrEntry[];
  const out: NetnsInterface[] = [];
  for (const entry of entries) {
    if (!entry.ifname || entry.link_type === 'loopback') continue;
    const addresses: NetworkAddress[] = [];
    for (const info of entry.addr_info ?? []) {
      if ((info.family !== 'inet' && info.family !== 'inet6') || !info.local || info.prefixlen === undefined) continue;
      if (info.scope === 'link') continue;
      addresses.push({ ifname: entry.ifname, family: info.family, address: `${info.local}/${info.prefixlen}` });
    }
    if (addresses.length === 0) continue;
    const iface: NetnsInterface = { ifname: entry.ifname, addresses };
    if (entry.link_type === 'ether' && entry.address) iface.mac = entry.address;
    if (entry.mtu) iface.mtu = entry.mtu;
    out.push(iface);
  }
  return out;
}

/** The interfaces of the network namespace at `nsPath` (/run/netns/NAME or /proc/PID/ns/net). */
export async function readNetnsInterfaces(tools: NetnsTools, nsPath: string): Promise<NetnsInterface[]> {
  const { stdout } = await ip(tools, [`--net=${nsPath}`, tools.ipPath, '-j', 'addr', 'show'], 'nsenter');
  return parseIpAddrJson(stdout);
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export function isValidNetnsName(name: string): boolean {
  return /^[A-Za-z0-9_.+-]{1,200}$/.test(name) && name !== '.' && name !== '..';
}

/** Dummy links when the kernel has the driver; remembered per process after the first "Unknown device type". */
let dummyUnsupported = false;

/**
 * Creates `/run/netns/NAME` with lo up and the given interfaces. Throws ERR_RUNTIME_FAILED and leaves nothing
 * behind when a step fails. The caller owns the namespace afterwards (deleteNetns).
 */
export async function createNetns(
  tools: NetnsTools,
  name: string,
  interfaces: readonly NetnsInterface[],
  uplink?: NetnsUplink,
  /**
   * With an uplink: leave the bridge ends down and hand their names here; the caller raises them (raiseUplink)
   * once the restored sockets exist. Until then nothing reaches the namespace: a client's retransmission arriving
   * before CRIU has restored its connection would otherwise be answered with a reset by the kernel.
   */
  holdUplink?: (peers: string[]) => void,
): Promise<string> {
  const held: string[] = [];
  if (!isValidNetnsName(name)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${name}" cannot name a network namespace`);
  }
  await ip(tools, ['netns', 'add', name]);
  try {
    const inNs = (args: string[]) => ip(tools, ['-n', name, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    for (const [index, iface] of interfaces.entries()) {
      const attrs = [...(iface.mac ? ['address', iface.mac] : []), ...(iface.mtu ? ['mtu', String(iface.mtu)] : [])];
      let peer: string | undefined;
      if (uplink) {
        // Created in the bridge's namespace, the container end moved into ours: no name can clash on this host.
        const outside = `fv${randomBytes(4).toString('hex')}`;
        const inUplink = (args: string[]) => ip(tools, [`--net=${uplink.netnsPath}`, tools.ipPath, ...args], 'nsenter');
        await inUplink(['link', 'add', outside, 'type', 'veth', 'peer', 'name', iface.ifname, ...attrs, 'netns', name]);
        await inUplink(['link', 'set', outside, 'master', uplink.bridge, ...(holdUplink ? [] : ['up'])]);
        held.push(outside);
      } else if (!dummyUnsupported) {
        try {
          await inNs(['link', 'add', iface.ifname, ...attrs, 'type', 'dummy']);
        } catch (err) {
          if (!/Unknown device type|not supported/i.test(String((err as FerryError).details?.stderr ?? err))) throw err;
          dummyUnsupported = true;
        }
      }
      if (!uplink && dummyUnsupported) {
        peer = `ferry-p${index}`;
        await inNs(['link', 'add', iface.ifname, ...attrs, 'type', 'veth', 'peer', 'name', peer]);
      }
      for (const addr of iface.addresses) {
        // nodad: an IPv6 address must be usable at once, CRIU binds the restored sockets to it.
        await inNs(['addr', 'add', addr.address, 'dev', iface.ifname, ...(addr.family === 'inet6' ? ['nodad'] : [])]);
      }
      if (peer) await inNs(['link', 'set', peer, 'up']);
      await inNs(['link', 'set', 'dev', iface.ifname, 'up']);
    }
  } catch (err) {
    await deleteNetns(tools, name).catch(() => undefined);
    throw err;
  }
  if (holdUplink && held.length > 0) holdUplink(held);
  return netnsPath(name);
}

/** ERR_RUNTIME_NAME_TAKEN unless the namespace a restore of `name` would make is free. */
export function assertNetnsFree(nsName: string): void {
  if (!existsSync(netnsPath(nsName))) return;
  throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `network namespace ${nsName} exists already`, {
    hint: `Remove it (\`ip netns delete ${nsName}\`) if no container uses it, or restore under another name.`,
    details: { netns: nsName },
  });
}

/** Brings up bridge ends that createNetns held down. */
export async function raiseUplink(tools: NetnsTools, uplink: NetnsUplink, peers: readonly string[]): Promise<void> {
  for (const peer of peers) await ip(tools, [`--net=${uplink.netnsPath}`, tools.ipPath, 'link', 'set', peer, 'up'], 'nsenter');
}

/** Deletes `/run/netns/NAME`; a namespace that does not exist is not an error. */
export async function deleteNetns(tools: NetnsTools, name: string): Promise<void> {
  if (!existsSync(netnsPath(name))) return;
  await ip(tools, ['netns', 'delete', name]);
}

/** `ip ARGS` inside the network namespace at `nsPath` (/run/netns/NAME or /proc/PID/ns/net). */
export async function ipIn(tools: NetnsTools, nsPath: string, args: readonly string[]): Promise<void> {
  await ip(tools, [`--net=${nsPath}`, tools.ipPath, ...args], 'nsenter');
}

/**
 * Several `ip` commands in the namespace at `nsPath`, one process (`ip -batch -`): each spawn costs ~15 ms, and a
 * fence runs while the container's clients wait. Stops at the first failing command.
 */
export async function ipBatchIn(tools: NetnsTools, nsPath: string, commands: readonly (readonly string[])[]): Promise<void> {
  if (commands.length === 0) return;
  const bad = commands.flat().find((arg) => !/^[^\s#"'\\]+$/.test(arg));
  if (bad !== undefined) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${bad}" cannot go into an ip batch line`, { hint: 'Run that command through its own argv (ipIn).' });
  await ip(tools, [`--net=${nsPath}`, tools.ipPath, '-batch', '-'], 'nsenter', commands.map((c) => `${c.join(' ')}\n`).join(''));
}

/** `ip ARGS` in this process's network namespace. */
export async function ipHere(tools: NetnsTools, args: readonly string[]): Promise<void> {
  await ip(tools, [...args]);
}

/** The recorded interfaces with addresses replaced where `readdress` names the interface, and a fresh MAC. */
export function readdressed(interfaces: readonly NetnsInterface[], readdress: Readonly<Record<string, string>> | undefined): NetnsInterface[] {
  if (!readdress) return [...interfaces];
  for (const ifname of Object.keys(readdress)) {
    if (!interfaces.some((i) => i.ifname === ifname)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the container has no interface ${ifname} to give a new address`, {
        hint: `Interfaces: ${interfaces.map((i) => i.ifname).join(', ') || 'none'}.`,
      });
    }
  }
  return interfaces.map((iface) => {
    const address = readdress[iface.ifname];
    if (!address) return iface;
    const family = address.includes(':') ? 'inet6' : 'inet';
    const { mac: _old, ...rest } = iface;
    return { ...rest, addresses: [{ ifname: iface.ifname, family, address }] };
  });
}

async function ip(tools: NetnsTools, args: string[], which: 'ip' | 'nsenter' = 'ip', input?: string): Promise<{ stdout: string }> {
  const file = which === 'ip' ? tools.ipPath : tools.nsenterPath;
  try {
    const running = run(file, args, { encoding: 'utf8' });
    if (input !== undefined) {
      // A tool that exits before reading its input (nsenter failing) would leave an EPIPE here: its exit status says it.
      running.child.stdin?.on('error', () => undefined);
      running.child.stdin?.end(input);
    }
    const { stdout } = await running;
    return { stdout };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const stderr = (e.stderr ?? '').trim();
    throw new FerryError('ERR_RUNTIME_FAILED', `${file} ${args.join(' ')} failed: ${stderr || e.message}`, {
      hint: 'Check the network namespace with `ip netns list` and `ip -n NAME addr`.',
      cause: err,
      details: { argv: [file, ...args], stderr },
    });
  }
}
