/** The first exchanges with the destination's agent: both hosts' facts, and the CPU check. */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FerryError, createImageDir, hostId, type CriuClient } from '@ferry/core';
import { FERRY_VERSION } from './host-summary';
import { PROTOCOL_VERSION, type AgentPeer } from '../protocol/agent-peer';
import type { HelloResult, HostSummary } from '../protocol/agent-messages';
import { packDir } from '../transfer';

/** Hello: this host's summary out, the destination's back (planMigration then judges the pair). */
export async function greet(peer: AgentPeer, deps: { localHost(): Promise<HostSummary>; stateDir: string }): Promise<{ local: HostSummary; remote: HostSummary }> {
  // Both ends gather their facts (CRIU's check, the runtimes) at the same time: the hello only says who this host is.
  const [local, hello] = await Promise.all([
    deps.localHost(),
    peer.request<HelloResult>('hello', {
      protocol: PROTOCOL_VERSION,
      ferryVersion: FERRY_VERSION,
      source: { hostId: hostId(deps.stateDir), hostname: hostname() },
    }),
  ]);
  return { local, remote: hello.host };
}

/** The destination checks this host's CPU description: restored code must find the same CPU features there. */
export async function checkCpu(criu: CriuClient, peer: AgentPeer, migrationId: string, workDir: string): Promise<void> {
  const dir = createImageDir(join(workDir, 'cpuinfo'));
  await criu.cpuinfoDump(dir);
  // Only the image: CRIU may still be appending to its log in the same directory.
  const result = await peer.request<{ compatible: boolean; detail?: string }>('cpuinfo-check', { migrationId }, (sink) =>
    packDir(dir, sink, { only: ['cpuinfo.img'] }).then(() => undefined),
  );
  if (!result.compatible) {
    throw new FerryError('ERR_PRECHECK_INCOMPATIBLE', `the destination's CPU lacks features this host's CPU has${result.detail ? ` (${result.detail})` : ''}`, {
      hint: 'Migrate to a host with the same or a newer CPU model.',
    });
  }
}
