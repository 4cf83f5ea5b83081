import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { FERRY_STATE_DIR, ensureStateDir, parseCgroupLayout, printable } from '@ferry/core';
import { cleanupMigration, hostSummary, serveAgent } from '@ferry/migrate';
import { criuClient, runtimeRegistry } from '../host-context';

export interface AgentArgs {
  'state-dir': string;
  cleanup?: string;
}

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'Destination side of a migration; started by `ferry migrate` over SSH (stdin/stdout carry the protocol)',
  builder: (y) =>
    y
      .option('state-dir', { type: 'string', default: FERRY_STATE_DIR, describe: 'Where incoming migrations are kept' })
      .option('cleanup', { type: 'string', describe: 'Undo migration ID left behind by an agent that died, then exit' }),
  handler: async (args) => {
    ensureStateDir(args['state-dir']);
    const registry = runtimeRegistry();
    // One line per message, whatever the peer put into the names it sent.
    const log = (line: string) => process.stderr.write(`ferry agent: ${printable(line, 2000)}\n`);
    if (args.cleanup) {
      const result = await cleanupMigration(args.cleanup, { runtime: (name) => registry.get(name), log, stateDir: args['state-dir'] });
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    const criu = criuClient();
    const layout = parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const cgroupRoots = [...new Set(Object.values(layout.v1Controllers)), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])];
    // A hung-up SSH session must still undo what it prepared: end the input, which runs the rollback.
    const hangUp = () => process.stdin.destroy();
    for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.once(signal, hangUp);
    await serveAgent(process.stdin, process.stdout, {
      runtime: (name) => registry.get(name),
      criu,
      hostSummary: () => hostSummary(criu, registry.adapters, args['state-dir']),
      stateDir: args['state-dir'],
      cgroupRoots,
      log,
    });
    process.exit(0);
  },
};
