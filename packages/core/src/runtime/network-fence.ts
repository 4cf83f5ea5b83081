/**
 * Network fences: what cuts a container off its network while it is frozen for a move, written down as plain JSON so
 * that another process (a recovery reading the migration's journal) can lift it. Why fence at all: after
 * `checkpoint --leave-running` the source kernel still owns the TCP sockets and would acknowledge what clients send,
 * so the restored copy's sequence numbers would fall behind and the connections break. With the links down (or the
 * host ends off their bridge), clients retransmit to whichever copy comes up.
 *
 * A fence names its network namespace by path and by inode: a /proc/PID/ns/net path may name another namespace once
 * that pid is reused, and lifting must never touch a namespace that is not the fenced one.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { RuntimeName } from '../model/container';
import { unescapeMountPath } from '../host/mountinfo';
import { FerryError } from '../model/ferry-error';
import { nsenterRunner, removeCriuNetworkLock } from './criu-network-lock';
import { ipBatchIn, ipHere, ipIn, readNetnsInterfaces, type NetnsTools } from './runc-netns';

/** What a fence did, as plain JSON (a journal holds it; unfenceNetwork() lifts it from any process). */
export type FenceRecord = { runtime: RuntimeName; id: string } & (
  | { kind: 'none' }
  /** The container's interfaces were set down inside its network namespace. */
  | { kind: 'links-down'; netns: { path: string; inode: number }; interfaces: string[] }
  /** The host ends of the container's veth links left their bridges (LXC): the container keeps its carrier. */
  | { kind: 'bridge-ports'; ports: { link: string; bridge: string }[] }
);

/**
 * A fence as fenceNetwork() returns it: the record (every enumerable property: JSON.stringify and structuredClone
 * give exactly the FenceRecord) and, not enumerable, unfence() to lift it from this process.
 */
export type Fence = FenceRecord & { readonly unfence: () => Promise<void> };

/** `record` with a non-enumerable unfence() that calls `lift(record)`. */
export function asFence(record: FenceRecord, lift: (record: FenceRecord) => Promise<void>): Fence {
  return Object.defineProperty({ ...record }, 'unfence', { value: () => lift(record), enumerable: false }) as Fence;
}

/**
 * The inode of the network namespace at `path` (/proc/PID/ns/net, or a bind mount such as /run/netns/NAME), or
 * undefined when it is no network namespace (or is gone). A namespace file lives on nsfs; its type shows in the magic
 * link an open fd reads back as (`net:[INODE]`), or for a bind mount in the mount's root in /proc/self/mountinfo.
 */
export function netnsInode(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { dev, ino } = fstatSync(fd);
    if (dev !== statSync('/proc/self/ns/net').dev) return undefined;
    const link = readlinkSync(`/proc/self/fd/${fd}`);
    if (link === `net:[${ino}]`) return ino;
    const root = `net:[${ino}]`;
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => {
        const fields = line.split(' ');
        return fields[3] === root && unescapeMountPath(fields[4] ?? '') === link;
      });
    return mounted ? ino : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Sets every interface of the namespace at `nsPath` (not lo) down; the record lifts it. */
export async function fenceLinks(tools: NetnsTools, owner: { runtime: RuntimeName; id: string }, nsPath: string, known?: readonly string[]): Promise<FenceRecord> {
  const inode = netnsInode(nsPath);
  if (inode === undefined) {
    throw new FerryError('ERR_RUNTIME_FAILED', `${nsPath} is not a network namespace`, { hint: 'Check that the container still runs.' });
  }
  const interfaces = known ? [...known] : (await readNetnsInterfaces(tools, nsPath)).map((i) => i.ifname);
  const record: FenceRecord = { ...owner, kind: 'links-down', netns: { path: nsPath, inode }, interfaces };
  // One `ip -batch` for the usual names; a name its line parser could misread (quotes, '#': a container's root may
  // name its links so) goes down through its own argv.
  // `dev` before the name: a link named like one of ip's keywords (a, m, h…) is still taken as a name.
  const plain = interfaces.filter((ifname) => LINK_NAME.test(ifname));
  try {
    await ipBatchIn(tools, nsPath, plain.map((ifname) => ['link', 'set', 'dev', ifname, 'down']));
    for (const ifname of interfaces.filter((i) => !plain.includes(i))) await ipIn(tools, nsPath, ['link', 'set', 'dev', ifname, 'down']);
  } catch (err) {
    // Some links may be down already: no record reaches the journal to lift them, so they go up again here.
    await liftFence(tools, record).catch(() => undefined);
    throw err;
  }
  return record;
}

/**
 * Lifts a fence; idempotent. Nothing happens when the fenced namespace is gone or the path now names another one,
 * and interfaces or links that no longer exist are passed over: there is nothing left to reconnect. A fenced
 * namespace also loses the iptables lock a frozen dump with TCP connections leaves in it (criu-network-lock.ts):
 * with the links up but the lock in place, a rolled-back source could still send or receive nothing.
 */
export async function liftFence(tools: NetnsTools, record: FenceRecord): Promise<void> {
  if (record.kind === 'links-down') {
    if (netnsInode(record.netns.path) !== record.netns.inode) return;
    await removeCriuNetworkLock(nsenterRunner(tools.nsenterPath, record.netns.path));
    for (const ifname of record.interfaces) {
      await ipIn(tools, record.netns.path, ['link', 'set', 'dev', ifname, 'up']).catch((err: unknown) => {
        if (!/Cannot find device|does not exist/i.test(String((err as FerryError).details?.stderr ?? ''))) throw err;
      });
    }
  } else if (record.kind === 'bridge-ports') {
    for (const { link, bridge } of record.ports) {
      if (!LINK_NAME.test(link) || !LINK_NAME.test(bridge)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `bad link name in fence record: ${link}, ${bridge}`);
      if (existsSync(`/sys/class/net/${link}`)) await ipHere(tools, ['link', 'set', link, 'master', bridge]);
    }
  }
}

/** Linux interface names: at most 15 bytes, no '/' or whitespace; ferry also refuses a leading '-'. */
export const LINK_NAME = /^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,14}$/;
