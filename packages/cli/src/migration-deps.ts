import { connectAgentOverSsh, hostSummary, runAgentCleanup, type MigrateDeps, type SshAgentOptions } from '@ferry/migrate';
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

/** Everything migrateContainer needs on this host, as the CLI configures it. */
export function migrationDeps(args: MigrationCliOptions): MigrateDeps {
  const criu = criuClient();
  const registry = runtimeRegistry();
  const ssh = sshOptionsFrom(args);
  return {
    findContainer: (name) => registry.findContainer(name),
    criu,
    connectAgent: (dest, signal) => connectAgentOverSsh(dest, ssh, signal),
    cleanupRemote: (dest, id) => runAgentCleanup(dest, ssh, id),
    localHost: () => hostSummary(criu, registry.adapters, stateDir()),
    stateDir: stateDir(),
  };
}
