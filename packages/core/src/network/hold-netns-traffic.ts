import { existsSync } from 'node:fs';
import { planPacketHold, type PacketHoldRecord } from './hold-plan';
import { resolveNetfilterTools, runTool, type ToolRunner } from './hold-rules';
import { PacketHold, type OpenHoldQueue } from './packet-hold';

export interface HoldNetnsTrafficOptions {
  /** The container's network namespace (nsfs path). */
  netnsPath: string;
  /** Interfaces to hold; default every one but lo. */
  interfaces?: readonly string[];
  /** Where iptables and nsenter are looked up (PATH syntax). */
  searchPath: string;
  /**
   * Called with the hold's record before anything is installed: journal it (fsync) here. If it throws, nothing
   * was done.
   */
  onRecord?: (record: PacketHoldRecord) => void | Promise<void>;
  run?: ToolRunner;
  openQueue?: OpenHoldQueue;
}

/** Plans, journals (onRecord) and starts a packet hold on a namespace: the usual way in. */
export async function holdNetnsTraffic(options: HoldNetnsTrafficOptions): Promise<PacketHold> {
  const run = options.run ?? runTool;
  const tools = await resolveNetfilterTools(options.searchPath, undefined, run);
  const record = planPacketHold({
    netnsPath: options.netnsPath,
    ...(options.interfaces ? { interfaces: options.interfaces } : {}),
    // A kernel without IPv6 has no ip6tables tables to put rules in (and no IPv6 traffic to hold).
    families: existsSync('/proc/sys/net/ipv6') ? ['ipv4', 'ipv6'] : ['ipv4'],
    variant: tools.variant,
  });
  await options.onRecord?.(record);
  return PacketHold.start({ record, tools, run, ...(options.openQueue ? { openQueue: options.openQueue } : {}) });
}
