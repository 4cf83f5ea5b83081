import { connectAgentOverSsh, hostSummary, runAgentCleanup, runAgentStatus, type MigrateDeps, type SshAgentOptions } from '@ferry/migrate';
import { criuClient, runtimeRegistry, stateDir } from './host-context';

export interface MigrationCliOptions {
  'accept-new-host-key': boolean;
  'agent-command'?: string;
}

export function sshOptionsFrom(args: MigrationCliOptions): SshAgentOptions {
  return {
    agentSocket: process.env.SSH_AUTH_SOCK,
    acceptNewHostKey: args['accept-new-host-key'],
    agentCommand: args['agent-command']?.split(' ').filter(Boolean),
  };
}

/** The SSH options a guardian is given (saved in the move's directory). */
export function guardedSsh(args: MigrationCliOptions): { acceptNewHostKey: boolean; agentCommand?: string[] } {
  const ssh = sshOptionsFrom(args);
  return { acceptNewHostKey: ssh.acceptNewHostKey === true, ...(ssh.agentCommand ? { agentCommand: [...ssh.agentCommand] } : {}) };
}

/** Everything migrateContainer needs on this host, as the CLI configures it. */
export function migrationDeps(args: MigrationCliOptions): MigrateDeps {
  return depsWith(sshOptionsFrom(args));
}

/** The same from a guarded move's saved SSH options (the guardian, the watchdog), with this process's agent socket. */
export function guardianDeps(saved: { acceptNewHostKey: boolean; agentCommand?: string[] }): MigrateDeps {
  return depsWith({ agentSocket: process.env.SSH_AUTH_SOCK, acceptNewHostKey: saved.acceptNewHostKey, agentCommand: saved.agentCommand });
}

function depsWith(ssh: SshAgentOptions): MigrateDeps {
  const criu = criuClient();
  const registry = runtimeRegistry();
  return {
    findContainer: (name) => registry.findContainer(name),
    criu,
    connectAgent: (dest, signal) => connectAgentOverSsh(dest, ssh, signal),
    cleanupRemote: (dest, id) => runAgentCleanup(dest, ssh, id),
    remoteStatus: (dest, id, options) => runAgentStatus(dest, ssh, id, options),
    localHost: () => hostSummary(criu, registry.adapters, stateDir(), process.env.PATH),
    stateDir: stateDir(),
  };
}
