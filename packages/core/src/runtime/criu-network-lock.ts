/**
 * CRIU's network lock, as it stays behind in a container's network namespace. For a dump with established TCP
 * connections CRIU locks the namespace with iptables: a chain named CRIU, jumped to from INPUT and OUTPUT, that drops
 * every packet not marked 0xC114. After ferry's frozen dump (leave-running, lazy) the chain is still there, and a
 * migration that rolls back then resumed a source that could not send or receive a packet: its clients hung on
 * connections that looked established at both ends (found moving memcached under memcaslap: a failed restore on
 * the destination, the source back, every client stuck retransmitting). removeCriuNetworkLock() takes the chain out
 * again; a namespace without it is left alone.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CRIU_LOCK_CHAIN = 'CRIU';

/** The commands that remove the lock, for iptables and ip6tables alike, in order (jumps first, then the chain). */
export function unlockCommands(tool: string): string[][] {
  return [
    [tool, '-w', '-D', 'INPUT', '-j', CRIU_LOCK_CHAIN],
    [tool, '-w', '-D', 'OUTPUT', '-j', CRIU_LOCK_CHAIN],
    [tool, '-w', '-F', CRIU_LOCK_CHAIN],
    [tool, '-w', '-X', CRIU_LOCK_CHAIN],
  ];
}

/** Runs argv inside the network namespace; resolves whether it exited 0 (never throws for a non-zero exit). */
export type RunInNetns = (argv: string[]) => Promise<boolean>;

/** A RunInNetns through nsenter into the namespace at `nsPath` (argv, never a shell). */
export function nsenterRunner(nsenterPath: string, nsPath: string): RunInNetns {
  return (argv) => run(nsenterPath, [`--net=${nsPath}`, ...argv]).then(() => true, () => false);
}

/**
 * Removes CRIU's lock chain where one is present (`-S CRIU` succeeds). Returns the tools it was removed from.
 * Throws only when a present chain cannot be removed.
 */
export async function removeCriuNetworkLock(runInNetns: RunInNetns): Promise<string[]> {
  const removed: string[] = [];
  for (const tool of ['iptables', 'ip6tables']) {
    if (!(await runInNetns([tool, '-w', '-S', CRIU_LOCK_CHAIN]))) continue;
    const [dropInput, dropOutput, flush, remove] = unlockCommands(tool);
    // A jump may be missing (a half-made lock): the flush and the removal decide.
    await runInNetns(dropInput!);
    await runInNetns(dropOutput!);
    if (!(await runInNetns(flush!)) || !(await runInNetns(remove!))) throw new Error(`could not remove CRIU's network lock (${tool} chain ${CRIU_LOCK_CHAIN})`);
    removed.push(tool);
  }
  return removed;
}
