import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { FERRY_STATE_DIR, ensureStateDir, parseCgroupLayout, printable } from '@ferry/core';
import { abandonPageLink, cleanupMigration, hostSummary, migrationStatus, pruneDecisions, recoverIncoming, serveAgent, settleOrphanedPages } from '@ferry/migrate';
import { selfCommand } from '../guarded-run';
import { criuClient, runtimeRegistry } from '../host-context';

export interface AgentArgs {
  'state-dir': string;
  cleanup?: string;
  status?: string;
  'abandon-pages'?: boolean;
}

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'Destination side of a migration; started by `ferry migrate` over SSH (stdin/stdout carry the protocol)',
  builder: (y) =>
    y
      .option('state-dir', { type: 'string', default: FERRY_STATE_DIR, describe: 'Where incoming migrations are kept' })
      .option('cleanup', { type: 'string', describe: 'Undo migration ID unless it committed here, print the outcome, then exit' })
      .option('status', { type: 'string', describe: 'Print this host\'s decision on migration ID, then exit' })
      .option('abandon-pages', { type: 'boolean', hidden: true, describe: 'With --status: the source will never reconnect post-copy\'s page link (its end was reset)' })
      .conflicts('cleanup', 'status'),
  handler: async (args) => {
    ensureStateDir(args['state-dir']);
    const registry = runtimeRegistry();
    // The source may be gone (its SSH session killed): writing there fails with EPIPE, which must not end the agent
    // while it still removes or watches what it restored.
    process.stderr.on('error', () => undefined);
    // One line per message, whatever the peer put into the names it sent.
    const log = (line: string) => process.stderr.write(`ferry agent: ${printable(line, 2000)}\n`);
    const deps = { runtime: (name: Parameters<typeof registry.get>[0]) => registry.get(name), log, stateDir: args['state-dir'] };
    if (args.status) {
      // A post-copy whose agent died is settled first: asking is how the source's guardian learns it.
      if (args['abandon-pages']) await abandonPageLink(args.status, deps);
      else await settleOrphanedPages(args.status, deps);
      process.stdout.write(`${JSON.stringify(migrationStatus(args.status, args['state-dir']))}\n`);
      return;
    }
    if (args.cleanup) {
      const result = await cleanupMigration(args.cleanup, deps);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    // Moves whose agent died are resolved before a new one is served (crash-safety §2: every agent start).
    for (const line of await recoverIncoming(deps, incomingIds(args['state-dir']))) log(`recovered ${line}`);
    pruneDecisions(args['state-dir']);
    const criu = criuClient();
    const layout = parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const cgroupRoots = [...new Set(Object.values(layout.v1Controllers)), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])];
    // A hung-up SSH session must still undo what it prepared: end the input, which runs the rollback. Writes to a
    // source that went away fail with EPIPE: the same end.
    const hangUp = () => process.stdin.destroy();
    for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.once(signal, hangUp);
    process.stdout.on('error', hangUp);
    await serveAgent(process.stdin, process.stdout, {
      ...deps,
      criu,
      hostSummary: () => hostSummary(criu, registry.adapters, args['state-dir'], process.env.PATH),
      cgroupRoots,
      ferryCommand: selfCommand(),
    });
    process.exit(0);
  },
};

function incomingIds(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, 'migrations'));
  } catch {
    return [];
  }
}
