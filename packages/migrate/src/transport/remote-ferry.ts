/**
 * Runs a ferry command on another host over SSH and collects its output (drains run `ferry migrate` on the hosts
 * that received containers to bring them back, and `ferry drain` on a host drained from elsewhere).
 */
import type { Destination } from '../hosts/resolve-host';
import { SshConnection } from './ssh-connection';
import type { SshAgentOptions } from './ssh-agent-connection';

export interface RemoteRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runFerryRemote(
  destination: Destination,
  argv: readonly string[],
  options: SshAgentOptions,
  onStderr?: (chunk: string) => void,
): Promise<RemoteRun> {
  const ssh = await SshConnection.connect({ destination, agentSocket: options.agentSocket, acceptNewHostKey: options.acceptNewHostKey });
  try {
    const channel = await ssh.exec(['ferry', ...argv]);
    let stdout = '';
    let stderr = '';
    channel.on('data', (c: Buffer) => (stdout += c.toString()));
    channel.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      onStderr?.(c.toString());
    });
    const code = await new Promise<number | null>((resolve) => {
      let exit: number | null = null;
      channel.once('exit', (c: number | null) => (exit = c));
      channel.once('close', () => resolve(exit));
    });
    return { code, stdout, stderr };
  } finally {
    ssh.close();
  }
}
