/**
 * ferry gc: removes what moves, failovers and interrupted runs left in the state directory, by the retention rule
 * of packages/migrate/src/agent/garbage.ts (a committed container's files stay while it runs from them).
 */
import type { CommandModule } from 'yargs';
import { collectGarbage, DEFAULT_RETENTION_MS } from '@ferry/migrate';
import { runtimeRegistry, stateDir } from '../host-context';
import { parseEvery } from './replicate';

export interface GcArgs {
  'older-than': string;
  'dry-run': boolean;
  json: boolean;
}

export const gcCommand: CommandModule<object, GcArgs> = {
  command: 'gc',
  describe: 'Remove leftovers of moves and failovers from the state directory (what a running container uses stays)',
  builder: (y) =>
    y
      .option('older-than', { type: 'string', default: `${DEFAULT_RETENTION_MS / 3_600_000}h`, describe: 'Retention for interrupted moves and failover logs (30m, 24h)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Only list what would go' })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const olderThanMs = parseEvery(args['older-than']);
    const registry = runtimeRegistry();
    const log = (line: string) => process.stderr.write(`ferry gc: ${line}\n`);
    const items = await collectGarbage({ stateDir: stateDir(), runtime: (name) => registry.get(name), log }, { olderThanMs, dryRun: args['dry-run'] });
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ event: 'gc', dryRun: args['dry-run'], items })}\n`);
      return;
    }
    for (const i of items) process.stdout.write(`${args['dry-run'] ? 'would remove' : 'removed'} ${i.path}: ${i.reason}\n`);
    process.stdout.write(`${items.length} ${args['dry-run'] ? 'to remove' : 'removed'}\n`);
  },
};
