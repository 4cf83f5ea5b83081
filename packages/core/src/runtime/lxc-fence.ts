/**
 * How an LXC container is fenced for a move (network-fence.ts says why). For veth networks the host ends (lxc-info's
 * "Link:") leave their bridge, outside the container: the container's links stay up and keep their carrier, so CRIU
 * restores its routes and reconnects its TCP sockets. (Measured: with the container's links down CRIU fails with
 * "soccr: Can't connect inet socket back: Network is unreachable"; with the host ends down, the carrier loss breaks the
 * route restore.) Other network types have no host end here: their links inside the container go down, and the
 * restore raises them (the record's raiseLinks), which keeps them off the network but does not carry established TCP
 * connections.
 */
import { basename } from 'node:path';
import { readlinkSync } from 'node:fs';
import type { ContainerInfo } from '../model/container';
import { fenceLinks, type FenceRecord } from './network-fence';
import { ipHere, type NetnsTools } from './runc-netns';

/** Fences the container; `hostLinks` lists the host ends of its veth links. */
export async function lxcFence(tools: NetnsTools, info: ContainerInfo, hostLinks: () => Promise<string[]>): Promise<FenceRecord> {
  const owner = { runtime: 'lxc' as const, id: info.ref.id };
  if (info.pid === undefined) return { ...owner, kind: 'none' };
  const ports = (await hostLinks()).flatMap((link) => {
    const bridge = bridgeOf(link);
    return bridge ? [{ link, bridge }] : [];
  });
  if (ports.length === 0) return fenceLinks(tools, owner, `/proc/${info.pid}/ns/net`);
  const record: FenceRecord = { ...owner, kind: 'bridge-ports', ports };
  for (const { link } of ports) await ipHere(tools, ['link', 'set', link, 'nomaster']);
  return record;
}

/** The bridge a host-side link is enslaved to (/sys/class/net/LINK/master), if any. */
function bridgeOf(link: string): string | undefined {
  try {
    return basename(readlinkSync(`/sys/class/net/${link}/master`));
  } catch {
    return undefined;
  }
}
