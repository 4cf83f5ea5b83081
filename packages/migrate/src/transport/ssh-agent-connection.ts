/**
 * Starts `ferry agent` on the destination over SSH and wraps the exec channel in an AgentPeer.
 */
import type { Socket } from 'node:net';
import { FerryError, resetPageServerLinkOnDeath } from '@ferry/core';
import { AgentPeer } from '../protocol/agent-peer';
import type { AgentConnection } from '../protocol/agent-connection';
import type { RemoteOutcome, StatusOptions } from '../protocol/agent-messages';
import type { Destination } from '../hosts/resolve-host';
import { SshConnection } from './ssh-connection';
import { openResumableTunnel, type RedialedLink, type ResumableTunnel } from './resumable-tunnel';

export interface SshAgentOptions {
  /** argv of the agent on the destination; default ["ferry", "agent"]. */
  agentCommand?: readonly string[];
  agentSocket?: string;
  acceptNewHostKey?: boolean;
}

const STDERR_TAIL_BYTES = 4096;

export async function connectAgentOverSsh(destination: Destination, options: SshAgentOptions, signal?: AbortSignal): Promise<AgentConnection> {
  const ssh = await SshConnection.connect({ destination, agentSocket: options.agentSocket, acceptNewHostKey: options.acceptNewHostKey, signal });
  const argv = options.agentCommand ?? ['ferry', 'agent'];
  let channel;
  try {
    channel = await ssh.exec(argv);
  } catch (err) {
    ssh.close();
    throw err;
  }
  channel.setMaxListeners(20);
  let stderr = '';
  let exitCode: number | undefined;
  channel.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_BYTES);
  });
  channel.on('exit', (code: number | null) => {
    exitCode = code ?? undefined;
  });
  const explain = (): FerryError | undefined => {
    if (exitCode === 127 || /command not found|No such file/.test(stderr)) {
      return new FerryError('ERR_AGENT_MISSING', `ferry is not installed on ${destination.name} (\`${argv.join(' ')}\` not found)`, {
        hint: `Install ferry on ${destination.name} (scripts/setup.sh puts \`ferry\` in /usr/local/bin); both hosts need it.`,
      });
    }
    // The agent logs progress on stderr too; only its error lines explain a death.
    const last = stderr.trim().split('\n').filter((l) => /error|ERR_|fatal/i.test(l)).slice(-3).join(' | ');
    return new FerryError('ERR_TRANSPORT_CLOSED', `the agent on ${destination.name} went away${exitCode !== undefined ? ` (exit ${exitCode})` : ''}${last ? `: ${last}` : ''}`, {
      hint: 'The SSH connection or the agent died; the source container keeps running. Retry when the destination is healthy.',
    });
  };
  const peer = new AgentPeer(channel, channel, destination.name, explain);
  const tunnelled = new Set<Socket>();
  let tunnelBytes = 0;
  // CRIU counts a clean disconnect of the lazy-pages client as "every page served" and then kills the source tree.
  // So a tunnelled connection is never ended just because the far side went away (the SSH connection dying looks
  // the same): it stays open until the caller knows which it was and calls finishTunnels().
  let tunnelsFinished: 'clean' | 'reset' | undefined;
  const finishTunnels = (how: 'clean' | 'reset') => {
    tunnelsFinished ??= how;
    for (const resumable of resumables) resumable.finish(tunnelsFinished);
    for (const socket of tunnelled) {
      if (tunnelsFinished === 'clean') socket.end();
      else socket.resetAndDestroy();
    }
  };
  const resumables = new Set<ResumableTunnel>();
  const adopt = (local: Socket) => {
    // The local end is CRIU's page server or page client: this process dying must read as failure there.
    resetPageServerLinkOnDeath(local);
    // The page protocols are small requests and answers, one at a time: Nagle's wait would be paid on every one.
    local.setNoDelay(true);
    local.on('data', (chunk: Buffer) => (tunnelBytes += chunk.length));
    tunnelled.add(local);
    local.on('close', () => tunnelled.delete(local));
  };
  void ssh.closed.then(() => channel.destroy());
  return {
    peer,
    close: () => {
      channel.end();
      ssh.close();
      for (const resumable of resumables) resumable.close();
    },
    tunnelledBytes: () => tunnelBytes,
    finishTunnels,
    tunnelToSocket: async (remotePath, local, tunnel = {}) => {
      if (tunnel.remoteEnd === 'resume') {
        adopt(local);
        const resumable = await openResumableTunnel({
          local,
          first: () => ssh.forwardOutStreamLocal(remotePath),
          redial: () => dialStreamLocal(destination, options, remotePath),
          onLinkLost: tunnel.onLinkLost,
        });
        resumables.add(resumable);
        if (tunnelsFinished) finishTunnels(tunnelsFinished);
        return;
      }
      let remote: Awaited<ReturnType<SshConnection['forwardOutStreamLocal']>>;
      try {
        remote = await ssh.forwardOutStreamLocal(remotePath);
      } catch (err) {
        local.destroy();
        throw err;
      }
      adopt(local);
      local.on('error', () => remote.destroy());
      remote.on('error', () => undefined);
      remote.pipe(local, { end: false });
      local.pipe(remote);
      if (tunnel.remoteEnd === 'pass') remote.once('close', () => passRemoteEnd(local));
      if (tunnelsFinished) finishTunnels(tunnelsFinished);
    },
  };
}

/** A new SSH connection to `destination` and a direct-streamlocal channel on it (a resumable link's next carrier). */
async function dialStreamLocal(destination: Destination, options: SshAgentOptions, path: string): Promise<RedialedLink> {
  const ssh = await SshConnection.connect({ destination, agentSocket: options.agentSocket, acceptNewHostKey: false });
  try {
    // sshd turns Nagle off on a connection only once it runs a session (OpenSSH's packet_set_interactive); a
    // connection that only forwards keeps it on, and every small page request then waits out the peer's delayed
    // ACK: measured, a resumed 128 MiB transfer took 69-87 s instead of 7 s. A no-op command sets it.
    const session = await ssh.exec(['true']);
    session.on('error', () => undefined);
    session.resume();
    return { link: await ssh.forwardOutStreamLocal(path), close: () => ssh.close() };
  } catch (err) {
    ssh.close();
    throw err;
  }
}

/** How long CRIU has to close its end after the destination's end reached it, before the link is reset. */
const PASS_END_GRACE_MS = 2_000;

/**
 * The destination's end of a page client's link (its page server finished, or died with its agent): what arrived is
 * delivered and followed by a FIN, so CRIU reads its last answer and then EOF; if CRIU has not closed its end soon
 * after (it is still writing pages that nobody will read), the link is reset so that its writes fail at once.
 */
function passRemoteEnd(local: Socket): void {
  if (local.destroyed) return;
  local.end();
  const timer = setTimeout(() => {
    if (!local.destroyed) local.resetAndDestroy();
  }, PASS_END_GRACE_MS);
  timer.unref();
  local.once('close', () => clearTimeout(timer));
}

/**
 * Runs `AGENT --cleanup ID` on the destination over a new connection and waits for it to finish: an uncommitted
 * migration is undone there (the destination decides `aborted`); a committed one is kept, and `kept` says so.
 */
export async function runAgentCleanup(destination: Destination, options: SshAgentOptions, migrationId: string): Promise<{ kept: boolean }> {
  const result = await runAgentOnce<{ committed?: boolean }>(destination, options, ['--cleanup', migrationId], 'cleaning');
  return { kept: result.committed === true };
}

/** Runs `AGENT --status ID` on the destination: its decision on the move, changing nothing. */
export function runAgentStatus(destination: Destination, options: SshAgentOptions, migrationId: string, ask: StatusOptions = {}): Promise<RemoteOutcome> {
  return runAgentOnce<RemoteOutcome>(destination, options, ['--status', migrationId, ...(ask.abandonPages ? ['--abandon-pages'] : [])], 'asking about');
}

async function runAgentOnce<T>(destination: Destination, options: SshAgentOptions, args: string[], what: string): Promise<T> {
  const ssh = await SshConnection.connect({ destination, agentSocket: options.agentSocket, acceptNewHostKey: false });
  try {
    const channel = await ssh.exec([...(options.agentCommand ?? ['ferry', 'agent']), ...args]);
    let stderr = '';
    let stdout = '';
    channel.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    channel.on('data', (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise<number | null>((resolve) => channel.once('exit', (c: number | null) => resolve(c)).once('close', () => resolve(null)));
    if (code !== 0) {
      throw new FerryError('ERR_ROLLBACK_FAILED', `${what} migration ${args[1]} on ${destination.name} failed (exit ${code}): ${stderr.trim()}`, {
        hint: `Run \`ferry agent ${args.join(' ')}\` on ${destination.name}.`,
      });
    }
    return JSON.parse(stdout.trim().split('\n').at(-1) || '{}') as T;
  } finally {
    ssh.close();
  }
}
